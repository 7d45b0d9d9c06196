"""Training and held-out documents for a `DataConfig`: the synthetic world or any `datasets` source.

Held-out documents are the first `eval_docs` of a file or hub source (training skips them), or, for the
synthetic world, stories drawn with seed + 1. Documents are yielded lazily so that streaming sources
never sit in memory as text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hiertok.config import DataConfig
from hiertok.data.pixels import PixelVocab
from hiertok.data.sources import is_synthetic, iter_documents
from hiertok.data.synthetic import StoryWorld
from hiertok.data.video import COLOURS, VideoWorld, VideoWorldConfig
from hiertok.data.video_files import read_videos
from hiertok.errors import UserError

DocStream = Callable[[], Iterator[str]]  # texts, or videos (T, H, W) of a video source


@dataclass
class Split:
    """One side of the data: a re-iterable document stream and, for the synthetic world, event labels."""

    docs: DocStream
    events: list[tuple[str, ...]] | None = None


@dataclass
class DocumentChoice:
    """Which documents a later stage uses; unset fields keep the tokenizer's (its segmentation always applies)."""

    source: str | None = None  # None: the tokenizer's training source
    max_docs: int | None = None  # None: the tokenizer's setting
    eval_docs: int | None = None  # held-out documents (None: the tokenizer's setting)
    # Documents a built-in world generates (None: the tokenizer's): a planner of a deterministic world learns its
    # rules from many more videos than an autoencoder needs frames, and memorises a small set.
    synthetic_docs: int | None = None
    # Knobs of the video world that differ from the tokenizer's (the others stay), e.g. {turn_prob: 0.1}: a planner of
    # turning squares on a tokenizer of frames drawn without turns (a frame is a frame).
    video: dict[str, Any] | None = None

    def apply(self, data: DataConfig) -> DataConfig:
        """The tokenizer's data settings with this choice of documents."""
        changes = {
            "source": self.source,
            "max_docs": self.max_docs,
            "eval_docs": self.eval_docs,
            "synthetic_docs": self.synthetic_docs,
            "video": None if self.video is None else _video_knobs(data.video, self.video),
        }
        chosen = dataclasses.replace(data, **{k: v for k, v in changes.items() if v is not None})
        chosen.validate()  # max_docs=0 would fall back to the tokenizer's setting unseen
        return chosen


def _video_knobs(world: VideoWorldConfig, changes: dict[str, Any]) -> VideoWorldConfig:
    """The world with some knobs changed (typed as the config's), or a one-line UserError."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(world), changes))
    except OmegaConfBaseException as e:
        raise UserError(f"data.video: {str(e).splitlines()[0]}") from None


def eval_seed(data: DataConfig) -> int:
    """Seed of the synthetic world's held-out stories."""
    return data.seed + 1


def synthetic_split(num_docs: int, seed: int) -> Split:
    stories = StoryWorld().generate(num_docs, seed=seed)
    return Split(lambda: iter([s.text for s in stories]), [s.events for s in stories])


def source_split(data: DataConfig, source: str, *, skip: int = 0, limit: int | None = None) -> Split:
    def docs() -> Iterator[str]:
        return iter_documents(
            source,
            split=data.split,
            text_column=data.text_column,
            config_name=data.hub_config,
            streaming=data.streaming,
            skip=skip,
            limit=limit,
        )

    return Split(docs)


def train_split(data: DataConfig) -> Split:
    """The documents a tokenizer trains on (for a video source, videos (T, H, W))."""
    if is_video(data.source):
        videos = train_videos(data)
        return Split(lambda: iter(videos))
    if is_synthetic(data.source):
        return synthetic_split(data.max_docs or data.synthetic_docs, data.seed)
    return source_split(data, data.source, skip=data.eval_docs, limit=data.max_docs)


def heldout_split(data: DataConfig, source: str | None = None, limit: int | None = None) -> Split:
    """Held-out documents: of the training source by default, or of another `source` (all of it)."""
    n = limit or data.eval_docs
    src = data.source if source is None else source
    if is_video(src):
        videos = heldout_videos(dataclasses.replace(data, source=src, eval_docs=n))
        return Split(lambda: iter(videos))
    if is_synthetic(src):
        return synthetic_split(n, eval_seed(data))
    if src == data.source:
        return source_split(data, src, limit=n)
    return source_split(data, src, limit=limit)


def is_video(source: str) -> bool:
    """Whether `source` names frames: the built-in video world or a .npy file of videos."""
    return source == "video" or source.endswith(".npy")


def pixel_vocab(data: DataConfig) -> PixelVocab:
    """The token ids of the frames a video source holds (the video world's colours and frame size)."""
    return PixelVocab(COLOURS, data.video.height, data.video.width)


def train_videos(data: DataConfig) -> np.ndarray:
    """(B, T, H, W) training videos: the video world's, drawn with `seed`, or a .npy file's after its first
    `eval_docs` (at most `max_docs` of them)."""
    if data.source == "video":
        return VideoWorld(data.video).generate(data.max_docs or data.synthetic_docs, data.seed)
    videos = read_videos(data.source, pixel_vocab(data))
    train = videos[data.eval_docs :]
    if len(train) == 0:
        raise UserError(f"{data.source}: {len(videos)} videos, all held out (data.eval_docs={data.eval_docs})")
    return train[: data.max_docs] if data.max_docs else train


def heldout_videos(data: DataConfig) -> np.ndarray:
    """(B, T, H, W) held-out videos: the video world's, drawn with seed + 1, or a .npy file's first `eval_docs`."""
    if data.source == "video":
        return VideoWorld(data.video).generate(data.eval_docs, eval_seed(data))
    return read_videos(data.source, pixel_vocab(data))[: data.eval_docs]


def video_splits(data: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """(training videos, held-out videos) of a video source (`train_videos`, `heldout_videos`)."""
    return train_videos(data), heldout_videos(data)
