"""An animated GIF of rollouts: each video's frames over time, its truth beside it, up to 16 videos in a grid.

A strip above each tile tells the context frames (grey) from the generated ones (orange), so that a reader
sees where the model took over.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from einops import rearrange

from hiertok.atomic import atomic_write
from hiertok.errors import UserError

MAX_VIDEOS = 16  # a grid of more is too small to read
# Colours 0..3 (background, then the objects), then the gaps, the context strip and the rollout strip.
PALETTE = [
    (24, 24, 24),
    (230, 75, 60),
    (80, 200, 120),
    (70, 130, 230),
    (110, 110, 110),
    (190, 190, 190),
    (250, 170, 40),
]
GAP, CONTEXT, GENERATED = 4, 5, 6
MISSING = GAP  # a truth frame past the truth's end


def gif_frames(videos: np.ndarray, context: int, truth: np.ndarray | None = None) -> np.ndarray:
    """The GIF's frames: every video's frame t (with the truth's frame t beside it) tiled into a grid.

    Args:
        videos: (B, T, H, W) colour indices (context then rollout); only the first 16 videos are drawn.
        context: how many of the T frames are the given context.
        truth: (B, T', H, W) the true videos, or None.

    Returns:
        (T, rows * (H + 3), cols * tile_w) uint8 palette indices, tile_w = W + 1 (2W + 2 with the truth).
    """
    videos = videos[:MAX_VIDEOS]
    b, t, h, w = videos.shape
    tiles = videos
    if truth is not None:
        truth = truth[:MAX_VIDEOS]
        shown = np.full_like(videos, MISSING)
        n = min(t, truth.shape[1])
        shown[:, :n] = truth[:, :n]
        gap = np.full((b, t, h, 1), GAP, dtype=np.uint8)
        tiles = np.concatenate([videos, gap, shown], axis=3)
    strip = np.full((b, t, 2, tiles.shape[3]), GENERATED, dtype=np.uint8)
    strip[:, :context] = CONTEXT
    tiles = np.concatenate([strip, tiles], axis=2)
    tiles = np.pad(tiles, ((0, 0), (0, 0), (0, 1), (0, 1)), constant_values=GAP)  # a gap after each tile
    cols = math.ceil(math.sqrt(b))
    rows = math.ceil(b / cols)
    blank = np.full((rows * cols - b, *tiles.shape[1:]), GAP, dtype=np.uint8)
    grid = np.concatenate([tiles, blank])
    return rearrange(grid, "(r c) t y x -> t (r y) (c x)", r=rows, c=cols)


def write_gif(
    path: str | Path,
    videos: np.ndarray,
    context: int,
    truth: np.ndarray | None = None,
    scale: int = 8,
    frame_ms: int = 250,
) -> None:
    """Write `videos` (and `truth` beside them) as an animated GIF, atomically.

    Args:
        path: the .gif file (its directory is created).
        videos: (B, T, H, W) or one (T, H, W) video of colour indices 0..3.
        context: how many of the T frames are the given context.
        truth: the true videos in the same rank, whole, or None.
        scale: pixels per frame pixel.
        frame_ms: how long each frame shows.
    """
    from PIL import Image

    path = Path(path)
    if path.suffix != ".gif":
        raise UserError(f"{path}: a picture of rollouts is written as a .gif file")
    one = videos.ndim == 3
    videos = videos[None] if one else videos
    if truth is not None:
        truth = truth[None] if one else truth
        if truth.ndim != 4 or truth.shape[0] != videos.shape[0] or truth.shape[2:] != videos.shape[2:]:
            raise UserError(
                f"--truth holds {tuple(truth.shape)}, the rollouts {tuple(videos.shape)}: the truth must be the same "
                "videos, whole, in the rank of --frames"
            )
    frames = gif_frames(videos, context, truth).repeat(scale, 1).repeat(scale, 2)
    palette = [c for rgb in PALETTE for c in rgb]
    images = []
    for frame in frames:
        image = Image.frombytes("P", (frame.shape[1], frame.shape[0]), np.ascontiguousarray(frame).tobytes())
        image.putpalette(palette)
        images.append(image)
    path.parent.mkdir(parents=True, exist_ok=True)

    def save(tmp: str) -> None:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)

    atomic_write(path, save)
