"""Videos in `.npy` files: read with every check a user's array needs, written atomically.

A file holds one video (T, H, W) or a batch (B, T, H, W) of colour indices. uint8 is the norm; any other integer
dtype is accepted when its values are colour indices. Whatever else a file holds is one line naming the file and
what is wrong with it (a `UserError`), never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hiertok.atomic import atomic_write
from hiertok.data.pixels import PixelVocab
from hiertok.errors import UserError

NPY_MAGIC = b"\x93NUMPY"  # the first bytes of every .npy file


def read_videos(path: str | Path, vocab: PixelVocab) -> np.ndarray:
    """The videos of a `.npy` file.

    Args:
        path: the file (known by its `.npy` extension).
        vocab: the frames' colours and size.

    Returns:
        (B, T, H, W) uint8 colour indices (B = 1 for a file of one video).

    Raises:
        UserError: a missing, empty or unreadable file, a pickled or non-integer array, another rank or frame size,
            no frames, or a value outside the colours.
    """
    return check_videos(load_npy(path), vocab, str(path))


def load_npy(path: str | Path) -> np.ndarray:
    """The array of a `.npy` file as saved (not yet checked as videos), or a one-line UserError."""
    path = Path(path)
    if path.suffix != ".npy":
        raise UserError(f"{path}: videos are read from .npy files (numpy.save), got a '{path.suffix}' file")
    try:
        with open(path, "rb") as f:
            magic = f.read(len(NPY_MAGIC))
        if not magic:
            raise UserError(f"{path}: the file is empty")
        if magic != NPY_MAGIC:  # np.load would try it as a pickle
            raise UserError(f"{path}: not a .npy array; save frames with numpy.save(path, uint8_array)")
        array = np.load(path, allow_pickle=False)
    except UserError:  # a ValueError too: said already
        raise
    except FileNotFoundError as e:
        raise UserError(f"{path}: no such file") from e
    except ValueError as e:  # numpy refuses an object array without unpickling it
        raise UserError(f"{path}: a pickled (object) array; save frames with numpy.save(path, uint8_array)") from e
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot read it as .npy ({e})") from e
    return array


def check_videos(array: np.ndarray, vocab: PixelVocab, name: str = "videos") -> np.ndarray:
    """Videos as a (B, T, H, W) uint8 array, or a one-line UserError starting with `name` that says what is wrong.

    Args:
        array: one video (T, H, W) or a batch (B, T, H, W) of integer colour indices.
        vocab: the frames' colours and size.
        name: what the message calls the array (a file's path).
    """
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        raise UserError(f"{name}: frames must hold integer colour indices (uint8), got dtype {array.dtype}")
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise UserError(f"{name}: expected one video (T, H, W) or a batch (B, T, H, W), got shape {array.shape}")
    b, t, h, w = array.shape
    if (h, w) != (vocab.height, vocab.width):
        raise UserError(f"{name}: frames are {h} x {w} pixels, this run's are {vocab.height} x {vocab.width}")
    if b == 0 or t == 0:
        raise UserError(f"{name}: no frames (shape {array.shape})")
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= vocab.colours:
        raise UserError(f"{name}: colour indices must be in 0..{vocab.colours - 1}, got values {low}..{high}")
    return array.astype(np.uint8)


def write_videos(path: str | Path, videos: np.ndarray) -> None:
    """Write videos (B, T, H, W) as uint8 `.npy`, atomically (a kill never leaves half a file)."""

    def save(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: numpy.save would append .npy to a path without it
            np.save(f, np.asarray(videos, dtype=np.uint8), allow_pickle=False)

    atomic_write(path, save)
