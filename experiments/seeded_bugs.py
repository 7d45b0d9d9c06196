"""Seeded bugs: plant one realistic bug at a time in a scratch copy of the tree and run the default tests on it.

Each bug is one exact text replacement in one file (the replaced text must occur exactly once, so that a
refactor that moves the code makes the bug fail to plant, loudly, instead of planting nothing). The default
test run (`python -m pytest -q -n 2`, the README's command, stopped at the first failure) must fail on every bug;
a bug it passes on is a gap in the tests. Writes report.md and report.json to --out: per bug, whether the run
failed, the first failing test and the time.

    python experiments/seeded_bugs.py                          # every bug (a few minutes each at most)
    python experiments/seeded_bugs.py --bugs resume_restarts --tests tests/test_resume.py   # one file's verdict
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Bug:
    what: str
    path: str
    old: str
    new: str


BUGS: dict[str, Bug] = {
    "resume_restarts": Bug(
        "a resumed run ignores its checkpoints and trains again from step 0",
        "hiertok/training.py",
        'ckpts = [p for p in self.all() if (p / "step.json").exists()]',
        "ckpts = []",
    ),
    "resume_step_zero": Bug(
        "a resumed run loads its checkpoint but counts steps again from 0",
        "hiertok/training.py",
        'return int(json.loads((latest / "step.json").read_text())["step"])',
        "return 0",
    ),
    "decoder_ignores_codes": Bug(
        "the token decoder's prefix embedding no longer depends on the idea's codes",
        "decoder/model.py",
        "prefix = self.prefix(codes, state)",
        "prefix = self.prefix(torch.zeros_like(codes), state)",
    ),
    "beams_wrong_score": Bug(
        "beams are pruned on the last level's log-probability, not the running one",
        "planner/search.py",
        "cand = logprob[:, grp, None] + logp[:, grp]",
        "cand = logp[:, grp].clone()",
    ),
    "goal_dropped": Bug(
        "Pipeline.generate encodes the goal but searches without it",
        "hiertok/pipeline.py",
        "plans = self.plans(prompt_codes, goal_codes, s, seed, progress)",
        "plans = self.plans(prompt_codes, None, s, seed, progress)",
    ),
    "codelength_leaks": Bug(
        "the codelength's planner sees each document's final idea in the goal slot",
        "planner/evaluate.py",
        "batch = windows.batch(idx, planner.vocab).to(device)\n            batch.goal_on[:] = False",
        "batch = windows.batch(idx, planner.vocab).to(device)",
    ),
    "pick_always_greedy": Bug(
        "the plan-faithful pick keeps the greedy text even when a sampled candidate follows the plan",
        "hiertok/story_decoding.py",
        "texts[int(left[j])] = sampled[j]",
        "texts[int(left[j])] = texts[int(left[j])]",
    ),
    "prefix_all_levels": Bug(
        "Codes.prefix(k) keeps every level",
        "hiertok/codes.py",
        "return Codes(self.ids[..., :k], self.mask, self.codebook_sizes)",
        "return Codes(self.ids, self.mask, self.codebook_sizes)",
    ),
    "decode_all_levels": Bug(
        "decoding with levels=k reads every level of the codes",
        "hiertok/story_decoding.py",
        "flat = codes.ids[..., :k][codes.mask].to(device)",
        "flat = codes.ids[codes.mask].to(device)",
    ),
    "segment_drops_space": Bug(
        "sentence segmentation drops the whitespace between sentences",
        "hiertok/data/segment.py",
        "pieces.append(text[a:c])",
        "pieces.append(text[a:c].lstrip() if a else text[a:c])",
    ),
    "segment_drops_trailing_space": Bug(
        "sentence segmentation drops the document's trailing whitespace",
        "hiertok/data/segment.py",
        "    cuts.append(len(text))\n",
        "    cuts.append(len(text.rstrip()))\n",
    ),
}


@dataclass
class Outcome:
    bug: str
    what: str
    caught: bool
    first_failure: str
    seconds: float


def plant(bug: Bug, work: Path) -> None:
    """Copy the tracked tree to `work` and apply `bug` (ValueError if its text is not there exactly once)."""
    if work.exists():
        shutil.rmtree(work)
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / rel)
    target = work / bug.path
    text = target.read_text()
    if text.count(bug.old) != 1:
        raise ValueError(f"{bug.path}: the text to replace occurs {text.count(bug.old)} times, not once")
    target.write_text(text.replace(bug.old, bug.new))


IGNORE_META = ["--ignore", "tests/test_seeded_bugs.py"]


def run_tests(work: Path, timeout: float, tests: list[str] = ()) -> tuple[bool, str, float]:
    """Run the default test run (or only `tests`) in `work`, its own code first on the path; (failed, first
    failure, seconds)."""
    env = {**os.environ, "PYTHONPATH": str(work), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    where = subprocess.run(
        [sys.executable, "-c", "import hiertok; print(hiertok.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not where.startswith(str(work)):
        raise RuntimeError(f"the scratch copy's tests would import {where}, not the copy's code")
    start = time.perf_counter()
    out = subprocess.run(
        # tests/test_seeded_bugs.py checks that each bug's text is in the clean tree: in a planted copy it fails
        # whatever the tests of the code do, so it is left out.
        [sys.executable, "-m", "pytest", "-q", "-x", "-n", "2", "-p", "no:cacheprovider", *IGNORE_META, *tests],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    seconds = time.perf_counter() - start
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out.stdout, re.M)
    return out.returncode != 0, failed[0] if failed else "", seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bugs", default=",".join(BUGS), help=f"comma-separated subset of {', '.join(BUGS)}")
    p.add_argument("--work", default="/tmp/hiertok-seeded", help="scratch copy (replaced for every bug)")
    p.add_argument("--out", default=str(ROOT / "experiments/results/seeded_bugs"))
    p.add_argument("--timeout", type=float, default=1200.0, help="seconds for one test run")
    p.add_argument("--tests", nargs="*", default=[], help="run only these test files (default: the default run)")
    args = p.parse_args(argv)
    names = [b for b in args.bugs.split(",") if b]
    if unknown := [b for b in names if b not in BUGS]:
        print(f"seeded_bugs: error: unknown bugs {unknown}; they are {', '.join(BUGS)}", file=sys.stderr)
        return 2
    outcomes = []
    for name in names:
        bug = BUGS[name]
        plant(bug, Path(args.work))
        caught, first, seconds = run_tests(Path(args.work), args.timeout, args.tests)
        outcomes.append(Outcome(name, bug.what, caught, first, round(seconds, 1)))
        print(f"{name}: {'caught by ' + first if caught else 'NOT CAUGHT'} ({seconds:.0f} s)", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps([asdict(o) for o in outcomes], indent=1) + "\n")
    lines = ["| bug | planted | caught | first failing test | s |", "|---|---|---|---|---:|"]
    lines += [
        f"| {o.bug} | {o.what} | {'yes' if o.caught else '**no**'} | {o.first_failure} | {o.seconds} |"
        for o in outcomes
    ]
    (out / "report.md").write_text("# Seeded bugs\n\n" + "\n".join(lines) + "\n")
    return 0 if all(o.caught for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
