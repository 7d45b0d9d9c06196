"""What `hiertok eval tokenizer` measures on a video run: reconstruction, what-and-where (hiertok/video_objects.py)
and a linear probe of positions (hiertok/video_probe.py), each by levels kept."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from hiertok.config import DataConfig
from hiertok.data.corpus import heldout_videos, pixel_vocab, train_videos
from hiertok.data.video_files import read_videos
from hiertok.errors import UserError
from hiertok.tokenizer import IdeaTokenizer
from hiertok.video_objects import objects_right
from hiertok.video_probe import probe_by_level

PROBE_VIDEOS = 200  # training videos the position probe is fitted on (4,000 frames of 20)


@dataclass
class VideoTokenizerEval:
    """Held-out frames decoded from their first k levels, for each k."""

    videos: int
    frames: int
    by_level: dict[int, dict[str, float]] = field(default_factory=dict)  # k -> exact_frame, pixel_accuracy, objects
    # k -> the linear probe of object centroids from the first k levels' codes, and the same on random weights
    probe: dict[int, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def evaluate_video_tokenizer(
    tok: IdeaTokenizer, videos: np.ndarray, probe_train: np.ndarray | None = None
) -> VideoTokenizerEval:
    """Reconstruction (exact frames, pixel accuracy) and what-and-where (`objects_right`) by levels kept; with
    `probe_train` videos, the position probe (hiertok/video_probe.py) fitted on them and scored on `videos`."""
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
    if probe_train is not None:
        result.probe = probe_by_level(tok, probe_train, videos, ks)
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
    """`hiertok eval tokenizer` on a video run: the probe is fitted on the run's first `PROBE_VIDEOS` training
    videos."""
    train = train_videos(dataclasses.replace(tok.cfg.data, max_docs=PROBE_VIDEOS))
    return evaluate_video_tokenizer(tok, eval_videos(tok.cfg.data, data, max_docs), train)
