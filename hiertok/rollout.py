"""Rollouts of videos: a planner run on frames continues context frames, frame by frame, as ideas; and how
`hiertok eval planner` scores a video planner (the next frame teacher-forced, open-loop rollouts).

A video is a document and each frame one idea, so a rollout is a plan: the planner searches the next frames'
codes (beam search or sampling, as for text) and the tokenizer decodes each planned frame from its codes. A
rollout has exactly the frames asked for: the planner may not end a video early.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from hiertok.checks import MAX_IDEAS, check_int
from hiertok.codes import Codes
from hiertok.data.video_files import check_videos
from hiertok.errors import UserError
from hiertok.pipeline import Pipeline
from hiertok.video_objects import after_bounce, centroids_agree
from planner.search import SearchConfig


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
    new = planned_frames(pipe, videos, s, seed, progress)
    out = np.concatenate([videos, new], axis=1)
    return out[0] if one else out


def planned_frames(
    pipe: Pipeline, videos: np.ndarray, search: SearchConfig, seed: int = 0, progress: bool = False
) -> np.ndarray:
    """Each video's best plan of `search.max_ideas` frames, decoded from its planned levels.

    Args:
        pipe: a planner run on video frames.
        videos: (B, T, H, W) uint8 context frames.
        search: the search settings (`allow_end` False for exactly `max_ideas` frames).

    Returns:
        (B, N, H, W) uint8 generated frames.
    """
    tok = pipe.tokenizer
    codes = tok.encode_frames(videos)
    plans = pipe.plans(codes.ids[..., : pipe.levels], None, search, seed, progress)
    planned = torch.stack([per[0].codes for per in plans]).cpu()  # (B, N, levels)
    mask = torch.ones(planned.shape[:2], dtype=torch.bool)
    return tok.decode_frames(Codes(planned, mask, tok.codebook_sizes), levels=pipe.levels)


@dataclass
class VideoPlannerEval:
    """The next frame teacher-forced, and open-loop rollouts from `context` frames."""

    videos: int
    next_frame_exact: float  # frame t (t >= 2) planned greedily from frames 0..t-1, decoded, exact
    context: int
    steps: int
    rollout_exact_per_step: list[float]
    rollout_all_exact: float  # videos whose every generated frame is exact
    rollout_centroids_within_1: float  # videos whose every colour stays within 1 pixel of the truth at every step
    rollout_exact_after_bounce: float | None  # generated frames just after a bounce, exact
    rollout_exact_elsewhere: float | None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def evaluate_video_planner(
    pipe: Pipeline, videos: np.ndarray, context: int = 4, steps: int = 16, beams: int = 1
) -> VideoPlannerEval:
    """Teacher-forced next frames (t >= 2: one frame does not show a velocity) and rollouts of `steps` frames from
    the first `context` frames of each video (videos must have context + steps frames)."""
    b, t = videos.shape[:2]
    if t < context + steps:
        raise UserError(f"rollouts of {steps} frames from {context} need videos of {context + steps} frames, got {t}")
    greedy = pipe.search_settings(1, 1, allow_end=False)
    hits = [(planned_frames(pipe, videos[:, :i], greedy)[:, 0] == videos[:, i]).all((-2, -1)) for i in range(2, t)]
    generated = planned_frames(pipe, videos[:, :context], pipe.search_settings(steps, beams, allow_end=False))
    truth = videos[:, context : context + steps]
    exact = (generated == truth).all((-2, -1))  # (B, steps)
    bounce = after_bounce(videos)[:, context : context + steps]
    return VideoPlannerEval(
        videos=b,
        next_frame_exact=float(np.mean(hits)) if hits else float("nan"),
        context=context,
        steps=steps,
        rollout_exact_per_step=exact.mean(0).tolist(),
        rollout_all_exact=float(exact.all(1).mean()),
        rollout_centroids_within_1=float(centroids_agree(generated, truth).all(1).mean()),
        rollout_exact_after_bounce=float(exact[bounce].mean()) if bounce.any() else None,
        rollout_exact_elsewhere=float(exact[~bounce].mean()) if (~bounce).any() else None,
    )
