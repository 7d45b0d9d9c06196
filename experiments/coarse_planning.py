"""Coarse-only planning of videos: the planner predicts each frame's first k levels only, and the decoder fills in the
rest. One video tokenizer run, one planner per k (`hiertok train planner ... levels=k` into RUNS/k<k>/; a finished one
is reused, an interrupted one resumed), each scored as `hiertok eval planner` scores it: the next frame teacher-forced
and rollouts from 4 frames. The table says whether the decoder saw the earlier frames (`model.decoder.context`).
Report only: the issue sets no bar here. Writes results.json, results.csv and results.md to --out.

    python experiments/coarse_planning.py --tokenizer runs/video/s0/tok --levels 1 2 4 8 \
        --runs runs/coarse --out experiments/results/coarse_planning
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.ablation import write_rows
from omegaconf import OmegaConf

from hiertok.cli import main as hiertok
from hiertok.errors import UserError
from hiertok.pipeline import Pipeline
from hiertok.rollout import evaluate_video_planner
from hiertok.tokenizer import WEIGHTS_FILE
from hiertok.training import CONFIG_FILE, METRICS_FILE
from hiertok.video_eval import eval_videos
from planner.config import data_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "planner" / "video.yaml"


def train(tokenizer: str, k: int, run: Path, overrides: list[str]) -> None:
    """The planner of the first k levels, trained into `run` (reused when finished, resumed when interrupted; a run
    there of another tokenizer or depth is a UserError, not reused)."""
    if (run / CONFIG_FILE).exists():
        cfg = OmegaConf.load(run / CONFIG_FILE)
        if Path(cfg.tokenizer).resolve() != Path(tokenizer).resolve() or cfg.levels != k:
            raise UserError(f"{run} holds a planner of {cfg.levels} levels on {cfg.tokenizer}: give another --runs")
    if (run / WEIGHTS_FILE).exists():
        return
    argv = ["train", "planner", "--config", str(CONFIG), "--out", str(run)]
    argv += ["--resume"] if (run / METRICS_FILE).exists() else []
    if hiertok([*argv, f"tokenizer={tokenizer}", f"levels={k}", *overrides]) != 0:
        raise UserError(f"training the planner of {k} levels into {run} failed (its error is above)")


def score(run: Path, k: int, videos: int, context: int, steps: int, beams: int) -> dict:
    """One row: the planner of k levels, its next frames and rollouts (`beams` wide) on the held-out videos of its
    world."""
    pipe = Pipeline.from_pretrained(run)
    held = eval_videos(data_config(pipe.cfg, pipe.tokenizer), None, videos)
    result = evaluate_video_planner(pipe, held, context, steps, beams)
    return {
        "planned_levels": k,
        "tokenizer_levels": pipe.tokenizer.levels,
        "decoder_saw_earlier_frames": bool(pipe.tokenizer.model.decoder.cfg.context),
        "videos": result.videos,
        "next_frame_exact": result.next_frame_exact,
        "rollout_all_exact": result.rollout_all_exact,
        "rollout_centroids_within_1": result.rollout_centroids_within_1,
        "rollout_exact_after_bounce": result.rollout_exact_after_bounce,
        "rollout_exact_elsewhere": result.rollout_exact_elsewhere,
        "rollout_exact_per_step": result.rollout_exact_per_step,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokenizer", required=True, help="a video tokenizer run")
    p.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8], help="the k planned")
    p.add_argument("--runs", default="runs/coarse_planning", help="the planners' run directories")
    p.add_argument("--out", default="experiments/results/coarse_planning")
    p.add_argument("--videos", type=int, default=50, help="held-out videos scored")
    p.add_argument("--context", type=int, default=4, help="frames a rollout starts from")
    p.add_argument("--steps", type=int, default=16, help="frames a rollout generates")
    p.add_argument("--beams", type=int, default=4, help="beam width of the rollouts (eval planner's default)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every planner")
    args = p.parse_args(argv)
    if min(args.levels + [args.videos, args.context, args.steps, args.beams]) < 1:
        p.error("--levels, --videos, --context, --steps and --beams must be >= 1")
    rows = []
    try:
        for k in args.levels:
            run = Path(args.runs) / f"k{k}"
            train(args.tokenizer, k, run, args.set)
            rows.append(score(run, k, args.videos, args.context, args.steps, args.beams))
    except (UserError, OSError) as e:
        print(f"coarse_planning: error: {e}", file=sys.stderr)
        return 2
    title = "Coarse-only planning of videos (one planner per k)"
    write_rows(rows, Path(args.out), title, json_only=("rollout_exact_per_step",))  # the curve: JSON only
    return 0


if __name__ == "__main__":
    sys.exit(main())
