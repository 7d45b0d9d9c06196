"""The CLI on runs trained on video frames. `hiertok encode` / `decode`: `.npy` videos in, JSONL codes out, and back
to `.npy` frames (`--out`); a frame is one idea, so a video's line holds one list of codes per frame. `hiertok
generate --frames`: context frames continued by a planner run (hiertok/rollout.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from hiertok.codes import Codes
from hiertok.data.video_files import check_videos, load_npy, read_videos, write_videos
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


def generate_frames(args: argparse.Namespace) -> int:
    """`hiertok generate --frames CONTEXT.npy`: the context and its rollout to `--out` (.npy); returns the exit code."""
    from hiertok.config import parse_device
    from hiertok.pipeline import Pipeline
    from hiertok.rollout import goal_frames, rollout
    from hiertok.video_gif import write_gif

    for flag, given in (
        ("--prompt", args.prompt is not None),
        ("--goal", args.goal is not None),
        ("--sentences", args.sentences is not None),
        ("--show-plan", args.show_plan),
        ("--json", args.json),
        ("--diverse-groups", args.diverse_groups is not None),
        ("--num-samples", args.num_samples != 1),
        ("--decode-candidates", args.decode_candidates is not None),
        ("--decode-passes", args.decode_passes is not None),
        ("--no-end", args.no_end),
    ):
        if given:
            raise UserError(f"{flag} has no meaning with --frames (a rollout has exactly --steps frames)")
    if args.out is None and args.gif is None:
        raise UserError("--frames writes the context and its rollout: give --out FILE.npy, --gif FILE.gif or both")
    if args.out is not None and Path(args.out).suffix != ".npy":
        raise UserError(f"--out {args.out}: the rollout is written as frames: give --out FILE.npy")
    if args.gif is not None and Path(args.gif).suffix != ".gif":
        raise UserError(f"--gif {args.gif}: give --gif FILE.gif")
    if args.truth is not None and args.gif is None:
        raise UserError("--truth is drawn beside the rollout in --gif FILE.gif: give --gif too")
    pipe = Pipeline.from_pretrained(args.ckpt, tokenizer=args.tokenizer, device=parse_device(args.device))
    if not pipe.tokenizer.is_video:
        raise UserError(f"{args.ckpt} was trained on text: --frames needs a planner run on video frames")
    frames = load_npy(args.frames)
    context = check_videos(frames, pipe.tokenizer.bpe, args.frames)  # (B, T, H, W); errors name the file
    goal = None
    if args.goal_frame is not None:
        if pipe.planner.goal_left is None:
            raise UserError(
                f"--goal-frame needs a planner of goals at a distance (model.goal_distance > 0, as "
                f"configs/planner/video-stochastic.yaml); {args.ckpt} was trained without"
            )
        goal = goal_frames(load_npy(args.goal_frame), len(context), pipe.tokenizer.bpe, args.goal_frame)
    truth = None
    if args.truth is not None:
        raw = load_npy(args.truth)
        truth = check_videos(raw, pipe.tokenizer.bpe, args.truth)  # (B, T', H, W)
        if raw.ndim != frames.ndim or len(truth) != len(context):
            raise UserError(f"{args.truth}: shape {raw.shape}, --frames {frames.shape}: give the same videos, whole")
        truth = truth[0] if frames.ndim == 3 else truth
    videos = rollout(
        pipe,
        frames,
        args.steps,
        args.beams,
        args.sample,
        args.temperature,
        args.top_p,
        args.top_k,
        args.seed,
        progress=sys.stderr.isatty(),
        goal=goal,
    )
    if args.out is not None:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_videos(args.out, videos)  # in the rank of --frames
    if args.gif is not None:
        write_gif(args.gif, videos, frames.shape[-3], truth)
    return 0
