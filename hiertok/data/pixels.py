"""Frames as ideas: a frame of colour indices is one idea of H x W pixel tokens.

The second modality needs no model of its own: the idea tokenizer, planner and decoder see token ids, and a
frame's ids are its pixels, row-major, each colour c as the id `c + 3` after the three special tokens the text
vocabulary has too (`<pad>`, `<bos>`, `<eos>` at 0, 1, 2). A video is a document, one idea per frame.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from einops import rearrange

from hiertok.atomic import atomic_write_text
from hiertok.data.ideas import IdeaCorpus
from hiertok.errors import UserError

PIXELS_FILE = "pixels.json"
SPECIALS = 3  # <pad>, <bos>, <eos>: the ids below the colours'


@dataclass(frozen=True)
class PixelVocab:
    """The token ids of frames with `colours` colour indices (0 the background) and `height` x `width` pixels."""

    colours: int = 4
    height: int = 16
    width: int = 16

    pad_id = 0
    bos_id = 1
    eos_id = 2

    def __post_init__(self) -> None:
        if self.colours < 2 or min(self.height, self.width) < 1:
            raise UserError(
                f"frames need at least 2 colours and 1 x 1 pixels, got {self.colours} colours, "
                f"{self.height} x {self.width}"
            )

    @property
    def vocab_size(self) -> int:
        return SPECIALS + self.colours

    @property
    def frame_tokens(self) -> int:
        """Tokens of one frame: H * W."""
        return self.height * self.width

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Token ids of frames.

        Args:
            frames: (..., H, W) integer colour indices in 0..colours-1 (checked by `read_videos` for files).

        Returns:
            (..., H * W) int32 token ids, row-major.
        """
        return (rearrange(np.asarray(frames), "... h w -> ... (h w)") + SPECIALS).astype(np.int32)

    def decode(self, ids: Sequence[int]) -> np.ndarray:
        """The frame a decoder wrote: any token that is not a colour (a special) is the background, a text
        shorter than a frame is filled with background and a longer one cut, so that every output is a frame.

        Args:
            ids: one idea's token ids.

        Returns:
            (H, W) uint8 colour indices.
        """
        out = np.zeros(self.frame_tokens, dtype=np.int64)
        got = np.asarray(list(ids)[: self.frame_tokens], dtype=np.int64) - SPECIALS
        out[: len(got)] = np.where((got >= 0) & (got < self.colours), got, 0)
        return rearrange(out.astype(np.uint8), "(h w) -> h w", h=self.height)

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """`decode` of each idea: (H, W) frames."""
        return [self.decode(ids) for ids in batch]

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON (atomically)."""
        spec = {"kind": "pixels", "colours": self.colours, "height": self.height, "width": self.width}
        atomic_write_text(path, json.dumps(spec) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> PixelVocab:
        """Read a vocabulary `save` wrote.

        Raises:
            UserError: if the file is not one.
        """
        try:
            spec = json.loads(Path(path).read_text(encoding="utf-8"))
            if spec.pop("kind") != "pixels":
                raise ValueError("not a pixel vocabulary")
            return cls(**spec)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"{path} is not a pixel vocabulary ({e})") from e


def video_corpus(videos: np.ndarray, vocab: PixelVocab) -> IdeaCorpus:
    """Videos as an idea corpus: each video a document, each frame an idea of H * W pixel tokens.

    Args:
        videos: (B, T, H, W) colour indices.
        vocab: the pixel vocabulary (its H and W must be the frames').

    Returns:
        The corpus (B documents of T ideas each).
    """
    b, t, h, w = videos.shape
    if (h, w) != (vocab.height, vocab.width):
        raise UserError(f"frames are {h} x {w}, the vocabulary's {vocab.height} x {vocab.width}")
    tokens = vocab.encode(videos).reshape(-1)
    idea_offsets = np.arange(b * t + 1, dtype=np.int64) * vocab.frame_tokens
    doc_offsets = np.arange(b + 1, dtype=np.int64) * t
    return IdeaCorpus(tokens, idea_offsets, doc_offsets, None)
