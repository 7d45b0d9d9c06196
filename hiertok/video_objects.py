"""What a frame shows, by colour: each object of the video world has its own colour, so colour c's pixels are that
object's visible part (covered only by higher colours). The measures that `hiertok eval` scores decoded frames and
rollouts by (hiertok/video_eval.py, hiertok/rollout.py) and the linear probe's targets (hiertok/video_probe.py).
"""

from __future__ import annotations

import numpy as np

from hiertok.data.video import COLOURS

OBJECT_COLOURS = np.arange(1, COLOURS)


def colour_masks(frames: np.ndarray) -> np.ndarray:
    """(..., H, W) frames -> (..., 3, H, W) bool: the pixels of each object colour 1..3."""
    return frames[..., None, :, :] == OBJECT_COLOURS[:, None, None]


def centroids(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each colour's centroid (mean pixel, (y, x)) and whether it is present.

    Args:
        frames: (..., H, W) colour indices.

    Returns:
        centres (..., 3, 2) float (NaN where absent) and present (..., 3) bool.
    """
    masks = colour_masks(frames)
    h, w = frames.shape[-2:]
    count = masks.sum((-2, -1))
    ys = (masks * np.arange(h)[:, None]).sum((-2, -1))
    xs = (masks * np.arange(w)[None, :]).sum((-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        centres = np.stack([ys / count, xs / count], -1)
    return centres, count > 0


def box_sizes(frames: np.ndarray) -> np.ndarray:
    """(..., H, W) -> (..., 3, 2) the height and width of each colour's bounding box (0 where absent)."""
    masks = colour_masks(frames)
    rows, cols = masks.any(-1), masks.any(-2)  # (..., 3, H), (..., 3, W)

    def extent(a: np.ndarray) -> np.ndarray:
        n = a.shape[-1]
        first = np.where(a.any(-1), a.argmax(-1), 0)
        last = np.where(a.any(-1), n - 1 - a[..., ::-1].argmax(-1), -1)
        return last - first + 1

    return np.stack([extent(rows), extent(cols)], -1)


def _placed(pred: np.ndarray, true: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(..., 3) each colour present in pred, in true, and (where both) with centroids within `tolerance` per axis."""
    cp, pp = centroids(pred)
    ct, pt = centroids(true)
    close = (np.abs(np.nan_to_num(cp - ct, nan=np.inf)) <= tolerance).all(-1)
    return pp, pt, close


def centroids_agree(pred: np.ndarray, true: np.ndarray, tolerance: float = 1.0) -> np.ndarray:
    """(..., H, W) pairs -> (...) bool: every colour present in either frame is present in both, with centroids
    within `tolerance` pixels on each axis."""
    pp, pt, close = _placed(pred, true, tolerance)
    return ((pp == pt) & (~pt | close)).all(-1)


def objects_right(pred: np.ndarray, true: np.ndarray) -> float:
    """The fraction of true objects (a colour present in a true frame) that the predicted frame shows with that
    colour, the same bounding-box size and a centroid within 1 pixel on each axis."""
    pp, pt, close = _placed(pred, true, 1.0)
    same_size = (box_sizes(pred) == box_sizes(true)).all(-1)
    right = pt & pp & close & same_size
    return float(right.sum() / max(1, pt.sum()))


def after_bounce(videos: np.ndarray) -> np.ndarray:
    """(B, T, H, W) -> (B, T) bool: frame t comes just after a bounce (some colour's centroid moved one way from
    t - 2 to t - 1 and the other way from t - 1 to t; frames 0 and 1 never)."""
    centres, _ = centroids(videos)
    d = np.sign(np.nan_to_num(np.diff(centres, axis=1)))  # (B, T-1, 3, 2)
    flip = ((d[:, 1:] * d[:, :-1]) < 0).any((-2, -1))  # (B, T-2): at frame t = index + 2
    out = np.zeros(videos.shape[:2], dtype=bool)
    out[:, 2:] = flip
    return out
