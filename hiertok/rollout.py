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
from einops import rearrange

from hiertok.checks import MAX_IDEAS, check_int
from hiertok.codes import Codes
from hiertok.data.pixels import PixelVocab
from hiertok.data.video_files import check_videos
from hiertok.errors import UserError
from hiertok.pipeline import Pipeline
from hiertok.video_moves import legal_videos
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
    goal: np.ndarray | None = None,
) -> np.ndarray:
    """Continue videos by `steps` planned frames each (toward a goal frame at the last step, with `goal`).

    Args:
        pipe: a planner run trained on a video tokenizer's codes.
        frames: (T, H, W) one video or (B, T, H, W) a batch of colour indices, T >= 1 context frames.
        steps: frames to generate (default: the run's `search.max_ideas`).
        beams: beam width (default: the run's); ignored when sampling.
        sample, temperature, top_p, top_k: sample one plan per video instead of beam search.
        seed: sampling seed.
        progress: a progress bar over the planned frames on stderr.
        goal: (H, W) a goal frame for every video or (B, H, W) one each: the planner is shown it, and of its plans
            the first whose frame N decodes to the goal is kept (else the best). Frame N is always planned.

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
    goals = None if goal is None else goal_frames(goal, len(videos), tok.bpe)
    new = planned_frames(pipe, videos, s, seed, progress, goals)
    out = np.concatenate([videos, new], axis=1)
    return out[0] if one else out


def goal_frames(goal: np.ndarray, batch: int, vocab: PixelVocab, name: str = "goal frame") -> np.ndarray:
    """(H, W) or (B, H, W) goal frames -> (B, H, W) uint8, or a one-line UserError starting with `name`
    (`check_videos`' checks)."""
    goal = np.asarray(goal)
    if goal.ndim not in (2, 3):
        raise UserError(f"{name}: a goal frame is (H, W) or (B, H, W), got shape {goal.shape}")
    checked = check_videos(goal[None] if goal.ndim == 2 else goal[:, None], vocab, name)[:, 0]
    if len(checked) not in (1, batch):
        raise UserError(f"{name}: {len(checked)} goal frames for {batch} videos: give one, or one per video")
    return np.broadcast_to(checked, (batch, *checked.shape[1:])).copy()


def planned_frames(
    pipe: Pipeline,
    videos: np.ndarray,
    search: SearchConfig,
    seed: int = 0,
    progress: bool = False,
    goal: np.ndarray | None = None,
) -> np.ndarray:
    """Each video's best plan of `search.max_ideas` frames, decoded from its planned levels.

    Args:
        pipe: a planner run on video frames.
        videos: (B, T, H, W) uint8 context frames.
        search: the search settings (`allow_end` False for exactly `max_ideas` frames).
        goal: (B, H, W) goal frames, or None: the planner is shown each one's codes, and each video keeps its first
            plan (best first) whose last frame decodes to its goal, else its best.

    Returns:
        (B, N, H, W) uint8 generated frames.
    """
    tok = pipe.tokenizer
    codes = tok.encode_frames(videos)
    goal_codes = None if goal is None else tok.encode_frames(goal[:, None]).ids[:, 0, : pipe.levels]
    plans = pipe.plans(codes.ids[..., : pipe.levels], goal_codes, search, seed, progress)
    k = 1 if goal is None else min(len(per) for per in plans)  # without a goal, the best plan alone is decoded
    planned = torch.stack([torch.stack([p.codes for p in per[:k]]) for per in plans]).cpu()  # (B, K, N, levels)
    flat = rearrange(planned, "b k n l -> (b k) n l")
    mask = torch.ones(flat.shape[:2], dtype=torch.bool)
    # Planned codes are decoded as planned, unchecked: a planner's fine codes are often a little off, and a search for
    # a frame that encodes back to them replaced right frames with wrong ones (seed 0: next frame exact 0.918 -> 0.813;
    # experiments/README.md, "Analysis by synthesis").
    decoded = tok.decode_frames(Codes(flat, mask, tok.codebook_sizes), levels=pipe.levels, search_pixels=0)
    frames = rearrange(decoded, "(b k) ... -> b k ...", k=k)
    pick = np.zeros(len(frames), dtype=np.int64)  # the best plan
    if goal is not None:
        reached = (frames[:, :, -1] == goal[:, None]).all((-2, -1))  # (B, K)
        pick = np.where(reached.any(1), reached.argmax(1), 0)
    return frames[np.arange(len(frames)), pick]


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
    # A planner of goals at a distance (`model.goal_distance`): rollouts of `goal_steps` frames from `context`, shown
    # the true frame `goal_steps` after the context as the goal, with `goal_beams` beams.
    goal_steps: int | None = None
    goal_beams: int | None = None
    goal_valid_and_reached: float | None = None  # every step legal (hiertok/video_moves.py), the last frame the goal
    goal_reached: float | None = None
    goal_valid: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def evaluate_video_planner(
    pipe: Pipeline, videos: np.ndarray, context: int = 4, steps: int = 16, beams: int = 1, goal_steps: int = 8
) -> VideoPlannerEval:
    """Teacher-forced next frames (t >= 2: one frame does not show a velocity) and rollouts of `steps` frames from
    the first `context` frames of each video (videos must have context + steps frames); for a planner of goals at a
    distance, goal-conditioned rollouts of `goal_steps` frames too (with `beams`)."""
    b, t = videos.shape[:2]
    goals = pipe.planner.goal_left is not None
    check_int("goal_steps", goal_steps, 1, MAX_IDEAS)
    for name, n in (("rollouts", steps), ("goal-conditioned rollouts", goal_steps if goals else 0)):
        if t < context + n:
            raise UserError(f"{name} of {n} frames from {context} need videos of {context + n} frames, got {t}")
    greedy = pipe.search_settings(1, 1, allow_end=False)
    hits = [(planned_frames(pipe, videos[:, :i], greedy)[:, 0] == videos[:, i]).all((-2, -1)) for i in range(2, t)]
    generated = planned_frames(pipe, videos[:, :context], pipe.search_settings(steps, beams, allow_end=False))
    truth = videos[:, context : context + steps]
    exact = (generated == truth).all((-2, -1))  # (B, steps)
    bounce = after_bounce(videos)[:, context : context + steps]
    result = VideoPlannerEval(
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
    if goals:
        goal = videos[:, context + goal_steps - 1]
        search = pipe.search_settings(goal_steps, beams, allow_end=False)
        reached_frames = planned_frames(pipe, videos[:, :context], search, goal=goal)
        valid = legal_videos(np.concatenate([videos[:, :context], reached_frames], axis=1), context)
        reached = (reached_frames[:, -1] == goal).all((-2, -1))
        result.goal_steps, result.goal_beams = goal_steps, beams
        result.goal_valid_and_reached = float((valid & reached).mean())
        result.goal_reached, result.goal_valid = float(reached.mean()), float(valid.mean())
    return result
