"""Atomic file writes: a crash or a kill never leaves a half-written file under the final name.

Each write goes to a fresh temporary file in the destination's directory (so that the rename stays on one
file system, and processes writing the same path at once never share a temporary file), then `os.replace`
puts it in place in one step. The temporary file is removed if writing fails.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Create or replace `path` with what `write(tmp_path)` writes to a temporary path.

    Args:
        path: the destination file (its directory must exist).
        write: writes the whole file to the path it is given.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private (0600); a plain open() would not
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Create or replace `path` with `text` (UTF-8), atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
