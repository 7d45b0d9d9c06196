"""Do a video tokenizer and planner generalise past the videos they trained on? Two tests, each beside its reference.

- Speed 2: a planner trained on the default world (velocity components in {-1, 0, 1}) scored on held-out videos whose
  squares move up to 2 pixels an axis (`data.video.speed=2`, the same reflection rule), beside the same number of
  held-out videos of its own world.
- A colour x size pair held out: a tokenizer and planner trained on videos without any square of that colour and
  size (`data.video.exclude=[C,S]`), scored on held-out videos that each have one (`require`), beside held-out videos
  of its own training world.

Each row: the tokenizer's exact frames and objects right at k = 1, 2, 4, ..., L levels (`hiertok eval tokenizer`'s
figures, no probe), the next frame teacher-forced, and 16-frame rollouts from 4 frames, beam 4 (`hiertok eval
planner`'s). A frame alone is drawn alike at speed 1 and 2 (uniform corners either way), so there the tokenizer's
columns can differ only by chance; speed tests the planner. Report only: the issue sets no bar here. Writes
results.json, results.csv and results.md to --out.

    hiertok train tokenizer --config configs/tokenizer/video.yaml --out runs/vgen/tok data.video.exclude=[3,2]
    hiertok train planner --config configs/planner/video.yaml --out runs/vgen/plan tokenizer=runs/vgen/tok
    python experiments/video_generalisation.py --planner runs/video/s0/plan --pair-planner runs/vgen/plan \
        --out experiments/results/video_generalisation
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
from harness.ablation import write_rows

from hiertok.data.corpus import eval_seed
from hiertok.data.video import VideoWorld
from hiertok.errors import UserError
from hiertok.pipeline import Pipeline
from hiertok.rollout import evaluate_video_planner
from hiertok.video_eval import evaluate_video_tokenizer
from planner.config import data_config


def held_out(pipe: Pipeline, videos: int, **knobs) -> np.ndarray:
    """(videos, T, H, W) videos of the planner's world (`hiertok eval planner`'s) with `knobs` changed, drawn with its
    held-out seed."""
    data = data_config(pipe.cfg, pipe.tokenizer)
    if data.source != "video":
        raise UserError(f"the run was trained on {data.source}, not on the built-in video world")
    return VideoWorld(dataclasses.replace(data.video, **knobs)).generate(videos, seed=eval_seed(data))


def score(pipe: Pipeline, videos: np.ndarray, label: str, args: argparse.Namespace) -> dict:
    """One row: the tokenizer's reconstruction by levels kept, and the planner's next frames and its rollouts of
    `args.steps` frames from `args.context`, `args.beams` wide."""
    tok = evaluate_video_tokenizer(pipe.tokenizer, videos)
    plan = evaluate_video_planner(pipe, videos, args.context, args.steps, args.beams)
    row = {"videos": label, "count": len(videos)}
    for k, figures in tok.by_level.items():
        row[f"exact_frame_k{k}"] = figures["exact_frame"]
        row[f"objects_right_k{k}"] = figures["objects_right"]
    row.update(
        next_frame_exact=plan.next_frame_exact,
        rollout_all_exact=plan.rollout_all_exact,
        rollout_centroids_within_1=plan.rollout_centroids_within_1,
        rollout_exact_per_step=plan.rollout_exact_per_step,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--planner", help="a video planner run trained on the default world: the speed-2 test")
    p.add_argument("--pair-planner", help="a video planner run whose world excludes a colour x size pair")
    p.add_argument("--videos", type=int, default=50, help="held-out videos per row")
    p.add_argument("--context", type=int, default=4, help="frames a rollout starts from")
    p.add_argument("--steps", type=int, default=16, help="frames a rollout generates")
    p.add_argument("--beams", type=int, default=4, help="beam width of the rollouts (eval planner's default)")
    p.add_argument("--out", default="experiments/results/video_generalisation")
    args = p.parse_args(argv)
    if not (args.planner or args.pair_planner):
        p.error("give --planner, --pair-planner or both")
    if min(args.videos, args.context, args.steps, args.beams) < 1:
        p.error("--videos, --context, --steps and --beams must be >= 1")
    rows = []
    try:
        if args.planner:
            pipe = Pipeline.from_pretrained(args.planner)
            if data_config(pipe.cfg, pipe.tokenizer).video.speed != 1:
                raise UserError(f"{args.planner} was trained on squares faster than 1 pixel: speed 2 tests nothing")
            for label, knobs in (("its own world (speed 1)", {}), ("speed 2", {"speed": 2})):
                rows.append(score(pipe, held_out(pipe, args.videos, **knobs), label, args))
        if args.pair_planner:
            pipe = Pipeline.from_pretrained(args.pair_planner)
            pair = data_config(pipe.cfg, pipe.tokenizer).video.exclude
            if pair is None:
                raise UserError(f"{args.pair_planner} was not trained with data.video.exclude=[colour,size]")
            named = f"colour {pair[0]} size {pair[1]}"
            unseen = {"exclude": None, "require": list(pair)}
            for label, knobs in ((f"its own world (no {named})", {}), (f"each with {named}", unseen)):
                rows.append(score(pipe, held_out(pipe, args.videos, **knobs), label, args))
    except (UserError, OSError) as e:
        print(f"video_generalisation: error: {e}", file=sys.stderr)
        return 2
    title = "Video generalisation (each test beside its own world)"
    write_rows(rows, Path(args.out), title, json_only=("rollout_exact_per_step",))  # the curve: JSON only
    return 0


if __name__ == "__main__":
    sys.exit(main())
