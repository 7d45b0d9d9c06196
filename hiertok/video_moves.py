"""Whether frames follow the video world's rules (hiertok/data/video.py): the check of goal-conditioned rollouts.

From frames alone a square's state is not always one: a square partly or wholly covered by higher colours could sit
in several places. So each colour is tracked as the set of its states (size, top-left corner) that every frame so
far allows, one step apart, as a parser tracks the states of an ambiguous input: a video is legal when that set is
never empty. A state (x, y, s) of colour c is allowed by a frame when every pixel of colour c lies in the square and
every pixel of the square is c or a higher colour (painted over it); a step moves each axis by at most one pixel and
not both by none, inside the walls (the reflection rule moves a square by one pixel too, at a wall).
"""

from __future__ import annotations

import numpy as np
from einops import rearrange

from hiertok.data.video import COLOURS, SIZES


def _box_sums(mask: np.ndarray, size: int) -> np.ndarray:
    """(..., H, W) bool -> (..., H - s + 1, W - s + 1) the count of True in each s x s square, indexed (y, x)."""
    c = np.pad(mask.astype(np.int32).cumsum(-2).cumsum(-1), [(0, 0)] * (mask.ndim - 2) + [(1, 0), (1, 0)])
    return c[..., size:, size:] - c[..., :-size, size:] - c[..., size:, :-size] + c[..., :-size, :-size]


def allowed_states(frames: np.ndarray, colour: int) -> dict[int, np.ndarray]:
    """Where a square of `colour` can be in each frame.

    Args:
        frames: (..., H, W) colour indices.
        colour: 1..3.

    Returns:
        {s: (..., H - s + 1, W - s + 1) bool} for each size s: True where a square of side s with its top-left corner
        at (x, y) (indexed [y, x]) is allowed by the frame.
    """
    mine, lower = frames == colour, frames < colour
    total = mine.sum((-2, -1))[..., None, None]
    return {s: (_box_sums(mine, s) == total) & (_box_sums(lower, s) == 0) for s in SIZES}


def _one_step(states: np.ndarray) -> np.ndarray:
    """(..., Y, X) bool -> the states one legal step away from a True one (8 neighbours, inside the walls)."""
    padded = np.pad(states, [(0, 0)] * (states.ndim - 2) + [(1, 1), (1, 1)])
    y, x = states.shape[-2:]
    out = np.zeros_like(states)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                out |= padded[..., 1 + dy : 1 + dy + y, 1 + dx : 1 + dx + x]
    return out


def legal_videos(videos: np.ndarray, context: int = 1) -> np.ndarray:
    """Which videos follow the rules: the colours of their first `context` frames, and no other, move as squares of
    a fixed size by legal steps in every frame.

    Args:
        videos: (B, T, H, W) colour indices.
        context: the leading frames that say which colours the video's squares have.

    Returns:
        (B,) bool.
    """
    present = rearrange((videos[:, :context, None] == np.arange(COLOURS)[:, None, None]), "b t c h w -> b c (t h w)")
    objects = present.any(-1)  # (B, C)
    objects[:, 0] = False
    legal = np.ones(len(videos), dtype=bool)
    for colour in range(1, COLOURS):
        has = objects[:, colour]
        seen = (videos == colour).any((-2, -1))  # (B, T)
        legal &= has | ~seen.any(1)  # a colour the context never showed may not appear
        allowed = allowed_states(videos, colour)  # {s: (B, T, Y, X)}
        alive = np.zeros(len(videos), dtype=bool)
        for states in allowed.values():  # each size on its own: a square keeps its size
            reach = states[:, 0]
            for t in range(1, videos.shape[1]):
                reach = states[:, t] & _one_step(reach)
            alive |= reach.any((-2, -1))
        legal &= ~has | alive
    return legal
