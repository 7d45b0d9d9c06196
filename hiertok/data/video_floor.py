"""Information floors of the video world: how few bits a frame can cost, alone and given the frames before it.

- A frame alone: log2 of the number of distinct frames the rules can draw (every colour set, size and corner of
  the objects, rendered and counted once: a square covered by a higher colour makes several states one frame).
- A frame given the earlier ones: the entropy of the next frame given the objects' states, averaged over the states
  of drawn videos. The earlier frames tell at most the states, so this is a lower bound on what a model of the
  frames before can reach: 0 bits for deterministic videos (`turn_prob` 0); with `turn_prob` p each object keeps its
  velocity with probability 1 - p + p/N (N: the world's velocities, 8 at speed 1), and next states that draw the
  same frame (a bounce, a covered square) count once.
- `exclude` and `require` (hiertok/data/video.py) leave out the frames whose squares break them.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter

import numpy as np

from hiertok.data.video import COLOURS, SIZES, VideoWorld, VideoWorldConfig, render, step

CHUNK = 1 << 18  # frames rendered at once while counting


def packed(frames: np.ndarray) -> np.ndarray:
    """(N, H, W) frames of colour indices 0..3 -> (N,) one opaque row of 2 bits a pixel each (for np.unique)."""
    flat = frames.reshape(len(frames), -1)
    flat = np.pad(flat, ((0, 0), (0, -flat.shape[1] % 4)))
    four = flat.reshape(len(flat), -1, 4).astype(np.uint8)
    rows = np.ascontiguousarray(four[..., 0] | four[..., 1] << 2 | four[..., 2] << 4 | four[..., 3] << 6)
    return rows.view(np.dtype((np.void, rows.shape[1]))).ravel()


def _frames(colours: tuple[int, ...], sizes: tuple[int, ...], corners: np.ndarray, h: int, w: int) -> np.ndarray:
    """(N, H, W) frames of objects with these colours and sizes at `corners` (N, K, 2), painted in increasing
    colour (`render`, for many states at once)."""
    n = len(corners)
    frames = np.zeros((n, h, w), dtype=np.uint8)
    ys, xs = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    for k in np.argsort(colours, kind="stable"):
        x, y, s = corners[:, k, 0, None, None], corners[:, k, 1, None, None], sizes[k]
        inside = (xs >= x) & (xs < x + s) & (ys >= y) & (ys < y + s)
        frames[inside] = colours[k]
    return frames


def distinct_frames(cfg: VideoWorldConfig) -> int:
    """The number of different frames the rules can draw (module docstring).

    Args:
        cfg: the world's knobs (size, number of objects, `exclude` / `require`; velocities and turns do not change
            what a frame can be).

    Returns:
        The count.
    """
    return len(drawable_frames(cfg))


def drawable_frames(cfg: VideoWorldConfig) -> np.ndarray:
    """(N,) every different frame the rules can draw, each packed into one opaque row (`packed`), sorted."""
    world = VideoWorld(cfg)
    seen: list[np.ndarray] = []
    for colours in itertools.combinations(range(1, COLOURS), cfg.objects):
        for sizes in itertools.product(SIZES, repeat=cfg.objects):
            if not world.allows(colours, sizes):
                continue
            per_object = [
                np.array([(x, y) for y in range(cfg.height - s + 1) for x in range(cfg.width - s + 1)]) for s in sizes
            ]
            states = itertools.product(*(range(len(c)) for c in per_object))
            while batch := list(itertools.islice(states, CHUNK)):
                idx = np.array(batch)
                corners = np.stack([per_object[k][idx[:, k]] for k in range(cfg.objects)], axis=1)
                seen.append(np.unique(packed(_frames(colours, sizes, corners, cfg.height, cfg.width))))
    return np.unique(np.concatenate(seen))


def frame_floor_bits(cfg: VideoWorldConfig) -> float:
    """log2 of `distinct_frames`: the bits of a frame alone if every drawable frame were as likely."""
    return math.log2(distinct_frames(cfg))


def next_frame_floor_bits(cfg: VideoWorldConfig, videos: int = 200, seed: int = 0) -> float:
    """The entropy in bits of a frame given the objects' states one step before, averaged over the steps of
    `videos` videos drawn with `seed` (module docstring): a floor for predicting a frame from the earlier ones.

    Args:
        cfg: the world's knobs (`turn_prob` 0 gives 0).
        videos: videos whose steps are averaged over.
        seed: their seed.

    Returns:
        Bits per predicted frame.
    """
    world, rng = VideoWorld(cfg), np.random.default_rng(seed)
    if cfg.turn_prob == 0 or cfg.frames < 2:
        return 0.0
    options = world.velocities
    keep = 1 - cfg.turn_prob + cfg.turn_prob / len(options)
    total, count = 0.0, 0
    for _ in range(videos):
        _, states = world.video(rng)
        for before in states[:-1]:
            outcomes: Counter[bytes] = Counter()
            for choice in itertools.product(range(len(options)), repeat=cfg.objects):
                drawn = options[list(choice)]
                same = (drawn == before.vel).all(1)
                p = math.prod(keep if s else cfg.turn_prob / len(options) for s in same)
                moved = step(dataclasses.replace(before, vel=drawn), cfg.height, cfg.width)
                outcomes[render(moved, cfg.height, cfg.width).tobytes()] += p
            probs = np.array(list(outcomes.values()))
            total += float(-(probs * np.log2(probs)).sum())
            count += 1
    return total / count
