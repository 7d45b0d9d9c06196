"""Toy training runs kept on disk between test sessions, for mutation testing only.

A mutation run (experiments/mutation.py) starts one pytest session per mutant, and each session would train the
toy runs again. With HIERTOK_TEST_RUN_CACHE set to a directory, a run is trained once with the clean code and
copied from there afterwards, unless the active mutant (mutmut's MUTANT_UNDER_TEST) is in a function that
training the run called: then the run is trained again, with the mutant, and not stored. Without the variable
(every ordinary test run) each session trains its own runs, as before.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

CACHE_ENV = "HIERTOK_TEST_RUN_CACHE"
ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("hiertok", "planner", "decoder")
# mutmut's names: module.x_function__mutmut_3, module.xǁClassǁmethod__mutmut_3 (the original: __mutmut_orig)
MUTANT_SUFFIX = re.compile(r"__mutmut_(\d+|orig)$")
NO_MUTANT = {"", "stats"}  # mutmut's clean runs: its stats collection runs the original code


@functools.cache  # the code does not change within a session
def _source_hash() -> str:
    """Hash of the code that trains a run (the mutated copy hashes differently from the clean tree)."""
    h = hashlib.sha256()
    for pkg in SOURCES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            h.update(str(path.relative_to(ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _functions_called(build: Callable[[], None]) -> set[str]:
    """Run `build` and return the project functions it called, as module.function names (mutmut's mangling
    for methods, as the mutated copy defines them)."""
    codes: set = set()

    def profile(frame, event, arg):  # noqa: ARG001 - sys.setprofile's signature
        if event == "call":
            codes.add((frame.f_code, frame.f_globals.get("__name__", "")))

    sys.setprofile(profile)
    try:
        build()
    finally:
        sys.setprofile(None)
    roots = tuple(str(ROOT / pkg) for pkg in SOURCES)
    return {
        f"{module}.{MUTANT_SUFFIX.sub('', code.co_name)}"
        for code, module in codes
        if code.co_filename.startswith(roots)
    }


# out directory -> its cache key, for the runs this session copied from the cache (or stored in it)
_KEYS: dict[Path, str] = {}


def _path_key(path: Path) -> str | None:
    """What a run trained on `path` depends on: a cached run's key, a file's content hash; None for a run
    trained afresh this session."""
    if path in _KEYS:
        return _KEYS[path]
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _files(path: Path) -> set[Path]:
    """The files under a run directory, relative to it (none for a file)."""
    return {f.relative_to(path) for f in path.rglob("*") if f.is_file()} if path.is_dir() else set()


def cached_run(name: str, args: list[str], train: Callable[[Path], None], out: Path, paths: list[Path] = ()) -> Path:
    """Train a run into `out` (train(out)), or copy it from the cache when the cache may stand in for it.

    Args:
        name: the run's name in the cache.
        args: its overrides: with the code and `paths`, what shapes the run (the cache key).
        train: trains a run into the directory it is given.
        out: where the run goes.
        paths: this session's files and runs (from cached_run) that `args` name; the key holds their content,
            and a copied run's config.yaml is pointed at them.

    Returns:
        `out`, holding the run.
    """
    cache = os.environ.get(CACHE_ENV)
    path_keys = [_path_key(Path(p)) for p in paths]
    if not cache or None in path_keys:  # no cache, or trained on a run trained afresh
        train(out)
        return out
    portable = [a for a in args if not any(str(p) in a for p in paths)]
    key = hashlib.sha256(json.dumps([name, portable, path_keys, _source_hash()]).encode())
    stored = Path(cache) / f"{name}-{key.hexdigest()[:16]}"
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if (stored / "functions.json").exists():
        meta = json.loads((stored / "functions.json").read_text())
        if MUTANT_SUFFIX.sub("", mutant) in set(meta["functions"]):
            train(out)  # the mutant is in the code that trains this run: it trains with the mutant
            return out
        shutil.copytree(stored / "run", out)
        for i, path in enumerate(paths):  # what training wrote into the runs it was trained on (code shards)
            if (stored / "wrote" / str(i)).is_dir():
                shutil.copytree(stored / "wrote" / str(i), path, dirs_exist_ok=True)
        config = out / "config.yaml"
        if paths and config.exists():
            text = config.read_text()
            for old, new in zip(meta["paths"], paths):
                text = text.replace(old, str(new))
            config.write_text(text)
        _KEYS[out] = stored.name
        return out
    before = [_files(Path(path)) for path in paths]
    functions = _functions_called(lambda: train(out))
    if mutant in NO_MUTANT:
        tmp = stored.with_name(stored.name + f".tmp{os.getpid()}")
        shutil.copytree(out, tmp / "run")
        for i, path in enumerate(paths):
            for rel in sorted(_files(Path(path)) - before[i]):
                (tmp / "wrote" / str(i) / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(path) / rel, tmp / "wrote" / str(i) / rel)
        meta = {"functions": sorted(functions), "paths": [str(p) for p in paths]}
        (tmp / "functions.json").write_text(json.dumps(meta))
        try:
            tmp.rename(stored)  # atomic: a concurrent session that stored it first wins
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
        _KEYS[out] = stored.name
    return out
