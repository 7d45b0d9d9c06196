"""`hiertok encode` / `decode` on a tokenizer run trained on video frames: `.npy` videos in, JSONL codes out, and
back to `.npy` frames (`--out`). A frame is one idea, so a video's line holds one list of codes per frame."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from hiertok.codes import Codes
from hiertok.data.video_files import read_videos, write_videos
from hiertok.errors import UserError
from hiertok.tokenizer import IdeaTokenizer

ENCODE_BATCH_VIDEOS = 64  # videos encoded together: memory stays bounded by one batch


def check_modality(tok: IdeaTokenizer, file: str | None) -> None:
    """One line when the input's kind is not the run's: a video run reads `.npy` files, a text run text."""
    is_npy = file is not None and Path(file).suffix == ".npy"
    if tok.is_video and not is_npy:
        raise UserError("this tokenizer run was trained on video frames: give it a .npy file of videos (B, T, H, W)")
    if is_npy and not tok.is_video:
        raise UserError(f"{file} holds frames, and this tokenizer run was trained on text")


def encode_videos(tok: IdeaTokenizer, file: str) -> None:
    """Every video's codes as a JSON line ({"codes": one list of levels per frame, "codebook_sizes": ...})."""
    videos = read_videos(file, tok.bpe)
    sizes = tok.codebook_sizes
    for start in range(0, len(videos), ENCODE_BATCH_VIDEOS):
        codes = tok.encode_frames(videos[start : start + ENCODE_BATCH_VIDEOS])
        for ids in codes.ids.tolist():
            print(json.dumps({"codes": ids, "codebook_sizes": sizes}))
        sys.stdout.flush()


def decode_videos(tok: IdeaTokenizer, codes: Codes, levels: int | None, passes: int, out: str | None) -> np.ndarray:
    """Frames decoded from every video's codes, written to `out` (.npy).

    Returns:
        (B, T, H, W) uint8 frames.
    """
    if out is None or Path(out).suffix != ".npy":
        raise UserError("a video run decodes frames: give --out FILE.npy")
    frames = tok.decode_frames(codes, levels=levels, passes=passes)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_videos(out, frames)
    return frames
