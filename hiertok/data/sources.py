"""Where documents come from: local files/directories or Hugging Face hub datasets.

One spelling of ``source`` everywhere: a local file (``.txt``, ``.jsonl``, ``.json``,
``.parquet``; ``.txt.gz``/``.jsonl.gz``/``.json.gz`` too), a local directory (all such
files under it, sorted), or a hub dataset name such as ``roneneldan/TinyStories``.
``"synthetic"`` (the built-in story world) is the caller's business.

Loading goes through ``datasets.load_dataset``. Progress bars are left to the caller
(``datasets.disable_progress_bars()``): for a big hub download they are useful.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from hiertok.errors import UserError

if TYPE_CHECKING:
    import datasets

SYNTHETIC = "synthetic"

# Suffix -> datasets builder. Longest suffixes first so ".jsonl.gz" wins over ".gz".
_BUILDERS = {
    ".txt.gz": "text",
    ".jsonl.gz": "json",
    ".json.gz": "json",
    ".txt": "text",
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
}
# Suffixes that mark a name as a file path (so a missing one is "no such file", not a
# hub lookup), including data formats we don't read.
_FILE_SUFFIXES = (*_BUILDERS, ".gz", ".csv", ".tsv", ".arrow", ".bz2", ".xz", ".zst")
# Same rule as datasets: a relative name with at most one "/" may be a hub repo id.
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def is_synthetic(source: str) -> bool:
    """Whether ``source`` names the built-in synthetic story world.

    Args:
        source: A source spelling.

    Returns:
        True for ``"synthetic"``.
    """
    return source == SYNTHETIC


def iter_documents(
    source: str,
    *,
    split: str = "train",
    text_column: str = "text",
    config_name: str | None = None,
    streaming: bool = False,
    limit: int | None = None,
    skip: int = 0,
) -> Iterator[str]:
    """Yield the non-blank documents of a source, in order.

    ``skip`` then ``limit`` count documents (after blank ones are dropped), so
    ``limit=N`` gives a held-out head and ``skip=N`` the rest.

    Args:
        source: Local file, local directory or hub dataset name (see module docstring).
        split: Hub split; local files always form a single ``"train"`` split.
        text_column: Column holding the text (``.txt`` files always use ``"text"``).
        config_name: Hub dataset config; ignored for local files.
        streaming: Read lazily (an ``IterableDataset``) instead of materializing the
            corpus in an Arrow cache first.
        limit: Maximum number of documents to yield (None: all).
        skip: Number of leading documents to drop.

    Returns:
        An iterator over document texts. The source is opened (and checked) by this
        call, not lazily, so errors surface here.

    Raises:
        UserError: For ``"synthetic"``, bad ``skip``/``limit``, an unsupported file type,
            a missing text column, or a hub dataset that can't be loaded.
        FileNotFoundError: For a path that does not exist.
    """
    if is_synthetic(source):
        raise UserError("source 'synthetic' is generated, not loaded: use the synthetic story generator")
    if skip < 0 or (limit is not None and limit < 0):
        raise UserError(f"skip and limit must be >= 0, got skip={skip}, limit={limit}")
    ds = _load(source, split=split, config_name=config_name, streaming=streaming)
    columns = ds.column_names  # None for some streamed hub datasets: checked per row then
    if columns is not None and text_column not in columns:
        raise UserError(f"{source!r} has no column {text_column!r}; available columns: {columns}")
    stop = None if limit is None else skip + limit
    return itertools.islice(_texts(ds, source, text_column), skip, stop)


def _load(
    source: str, *, split: str, config_name: str | None, streaming: bool
) -> datasets.Dataset | datasets.IterableDataset:
    """Open ``source`` with ``datasets.load_dataset``."""
    import datasets  # imported when a corpus is read: it costs a second, which the synthetic world need not pay

    path = Path(source).expanduser()
    if path.exists():
        files = _data_files(path)
        builder = _builder(files[0])
        kinds = {_builder(f) for f in files}
        if len(kinds) > 1:
            raise UserError(f"directory {source!r} mixes file types {sorted(kinds)}; use one type")
        # Paragraph mode: a .txt document is a blank-line separated block, not a line.
        extra = {"sample_by": "paragraph"} if builder == "text" else {}
        try:
            return datasets.load_dataset(
                builder, data_files=[str(f) for f in files], split="train", streaming=streaming, **extra
            )
        except Exception as e:  # e.g. DatasetGenerationError on bad JSON: multi-line, deeply chained
            raise UserError(f"could not read {source!r} as {builder}: {_short(e)}") from e
    if not _HUB_NAME.fullmatch(source) or source.lower().endswith(_FILE_SUFFIXES):
        raise FileNotFoundError(f"no such file: {source!r}")
    import huggingface_hub.constants as hub

    was_offline = datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE
    offline = datasets.config.HF_HUB_OFFLINE or not _hub_reachable(hub.ENDPOINT)
    # No network: the hub stack would retry for half a minute and log a dozen lines; read the cache only, this once.
    datasets.config.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE = offline or was_offline[1]
    try:
        return datasets.load_dataset(source, config_name, split=split, streaming=streaming)
    except Exception as e:  # the hub stack raises many types (ConnectionError, HTTP errors, ...)
        if offline:
            raise UserError(
                f"dataset {source!r} is not a local path and the Hugging Face Hub cannot be reached (offline), "
                f"nor does the local cache have it: {_short(e)}"
            ) from e
        raise UserError(
            f"could not load dataset {source!r} from the hub: {_short(e)} (and it is not a local path)"
        ) from e
    finally:
        datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE = was_offline


def _hub_reachable(endpoint: str, timeout: float = 3.0) -> bool:
    """Whether a connection to the hub's endpoint (HF_ENDPOINT, a mirror too) opens within `timeout` seconds. Behind
    a proxy (HTTPS_PROXY / ALL_PROXY) the hub stack's own connection decides: a direct probe would fail there."""
    import os
    import socket
    from urllib.parse import urlparse

    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(endpoint)
    try:
        socket.create_connection((url.hostname or "", url.port or 443), timeout=timeout).close()
    except (OSError, ValueError):
        return False
    return True


def _short(e: BaseException) -> str:
    """A one-line description of an exception, for error messages."""
    import datasets

    # DatasetGenerationError just says "An error occurred"; its cause says which.
    while isinstance(e, datasets.exceptions.DatasetGenerationError) and e.__cause__ is not None:
        e = e.__cause__
    first_line = next(iter(str(e).splitlines()), "")
    return f"{type(e).__name__}: {first_line}"[:300]


def _builder(path: Path) -> str | None:
    """The datasets builder for a file name, or None if the type is not supported."""
    name = path.name.lower()
    return next((b for suffix, b in _BUILDERS.items() if name.endswith(suffix)), None)


def _data_files(path: Path) -> list[Path]:
    """The data files of a local file or directory, checked and sorted."""
    supported = ", ".join(_BUILDERS)
    if path.is_file():
        if _builder(path) is None:
            raise UserError(f"unsupported file type: {str(path)!r} (supported: {supported})")
        return [path]
    if not path.is_dir():  # /dev/null, a FIFO: datasets reads files by name and type
        raise UserError(f"{str(path)!r} is not a regular file or a directory: give a data file ({supported})")
    files = sorted(
        f
        for f in path.rglob("*")
        if f.is_file()
        and _builder(f) is not None
        # Skip hidden files and folders (.git, .cache, ...).
        and not any(part.startswith(".") for part in f.relative_to(path).parts)
    )
    if not files:
        raise FileNotFoundError(f"no data files ({supported}) in directory {str(path)!r}")
    return files


def _texts(ds: Iterable[dict], source: str, column: str) -> Iterator[str]:
    """Yield ``row[column]`` for each row, skipping None and whitespace-only values."""
    rows = iter(ds)
    while True:
        # A stream parses files as it goes, so bad data shows up here rather than at load.
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as e:
            raise UserError(f"could not read {source!r}: {_short(e)}") from e
        if column not in row:
            raise UserError(f"{source!r} has no column {column!r}; available columns: {list(row)}")
        text = row[column]
        if text is None:
            continue
        if not isinstance(text, str):
            raise UserError(f"column {column!r} of {source!r} holds {type(text).__name__}, not text")
        if text.strip():
            yield text
