"""What `hiertok eval tokenizer` measures on a video run: reconstruction and what-and-where by level, and the
measures of frames that rollouts are scored by (hiertok/rollout.py).

Objects are found by colour: each object of the video world has its own colour, so colour c's pixels are that
object's visible part (covered only by higher colours).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from hiertok.config import DataConfig
from hiertok.data.corpus import heldout_videos, pixel_vocab
from hiertok.data.video import COLOURS
from hiertok.data.video_files import read_videos
from hiertok.errors import UserError
from hiertok.tokenizer import IdeaTokenizer

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


@dataclass
class VideoTokenizerEval:
    """Held-out frames decoded from their first k levels, for each k."""

    videos: int
    frames: int
    by_level: dict[int, dict[str, float]] = field(default_factory=dict)  # k -> exact_frame, pixel_accuracy, objects

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def evaluate_video_tokenizer(tok: IdeaTokenizer, videos: np.ndarray) -> VideoTokenizerEval:
    """Reconstruction (exact frames, pixel accuracy) and what-and-where (`objects_right`) by levels kept."""
    codes = tok.encode_frames(videos)
    ks = sorted({*(2**i for i in range(tok.levels.bit_length()) if 2**i <= tok.levels), tok.levels})
    result = VideoTokenizerEval(len(videos), int(np.prod(videos.shape[:2])))
    for k in ks:
        decoded = tok.decode_frames(codes, levels=k)
        result.by_level[k] = {
            "exact_frame": float((decoded == videos).all((-2, -1)).mean()),
            "pixel_accuracy": float((decoded == videos).mean()),
            "objects_right": objects_right(decoded, videos),
        }
    return result


def eval_videos(cfg: DataConfig, data: str | None, max_docs: int | None) -> np.ndarray:
    """The videos `hiertok eval` scores: the run's held-out videos (None), the built-in world's ('video', drawn
    with the run's knobs and held-out seed) or a .npy file's; at most `max_docs` of them."""
    if data is None:
        videos = heldout_videos(cfg)
    elif data == "video":
        videos = heldout_videos(dataclasses.replace(cfg, source="video", eval_docs=max_docs or cfg.eval_docs))
    elif data.endswith(".npy"):
        videos = read_videos(data, pixel_vocab(cfg))
    else:
        raise UserError(f"--data {data}: a video run is evaluated on 'video' (the built-in world) or a .npy file")
    return videos[:max_docs] if max_docs else videos


def evaluate_video_tokenizer_run(tok: IdeaTokenizer, data: str | None, max_docs: int | None) -> VideoTokenizerEval:
    """`hiertok eval tokenizer` on a video run."""
    return evaluate_video_tokenizer(tok, eval_videos(tok.cfg.data, data, max_docs))
