"""Rollouts of videos: a planner run on frames continues context frames, frame by frame, as ideas.

A video is a document and each frame one idea, so a rollout is a plan: the planner searches the next frames'
codes (beam search or sampling, as for text) and the tokenizer decodes each planned frame from its codes. A
rollout has exactly the frames asked for: the planner may not end a video early.
"""

from __future__ import annotations

import numpy as np
import torch

from hiertok.checks import MAX_IDEAS, check_int
from hiertok.codes import Codes
from hiertok.data.video_files import check_videos
from hiertok.errors import UserError
from hiertok.pipeline import Pipeline


def rollout(
    pipe: Pipeline,
    frames: np.ndarray,
    steps: int | None = None,
    beams: int | None = None,
    sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """Continue videos by `steps` planned frames each.

    Args:
        pipe: a planner run trained on a video tokenizer's codes.
        frames: (T, H, W) one video or (B, T, H, W) a batch of colour indices, T >= 1 context frames.
        steps: frames to generate (default: the run's `search.max_ideas`).
        beams: beam width (default: the run's); ignored when sampling.
        sample, temperature, top_p, top_k: sample one plan per video instead of beam search.
        seed: sampling seed.
        progress: a progress bar over the planned frames on stderr.

    Returns:
        The context followed by the generated frames, uint8, in the input's rank: (T + N, H, W) or
        (B, T + N, H, W).
    """
    tok = pipe.tokenizer
    if not tok.is_video:
        raise UserError("--frames needs a planner run trained on video frames; this one was trained on text")
    if steps is not None:
        check_int("steps", steps, 1, MAX_IDEAS)
    one = np.asarray(frames).ndim == 3
    videos = check_videos(frames, tok.bpe, "frames")
    s = pipe.search_settings(steps, beams, None, sample, temperature, top_p, top_k, 1, allow_end=False, seed=seed)
    s.decode_candidates, s.decode_passes = 1, 1  # a frame is decoded from its planned codes alone
    codes = tok.encode_frames(videos)
    plans = pipe.plans(codes.ids[..., : pipe.levels], None, s, seed, progress)
    planned = torch.stack([per[0].codes for per in plans]).cpu()  # (B, N, levels): each video's best plan
    mask = torch.ones(planned.shape[:2], dtype=torch.bool)
    new = tok.decode_frames(Codes(planned, mask, tok.codebook_sizes), levels=pipe.levels)
    out = np.concatenate([videos, new], axis=1)
    return out[0] if one else out
