"""Stage 3: train the planner on the code corpus of a frozen idea tokenizer, with Accelerate.

    hiertok train planner --config configs/planner/tiny.yaml --out runs/plan tokenizer=runs/tok [--resume]

Stage 2 (encoding the corpus into code shards) runs here on first use and is cached under the tokenizer run.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from hiertok.config import load_config
from hiertok.errors import UserError
from hiertok.stage import Stage
from hiertok.tokenizer import IdeaTokenizer
from hiertok.training import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    StepBatches,
    make_accelerator,
    prepare_run_dir,
    save_weights,
)
from planner.config import PlannerConfig, build_planner, load_codes
from planner.evaluate import teacher_forced_bits
from planner.shards import tokenizer_hash
from planner.windows import Windows


@dataclass
class PlannerTrainResult:
    run_dir: Path
    steps: int
    seconds: float
    last_eval: dict[str, float]


def train(cfg: PlannerConfig, run_dir: str | Path, resume: bool = False) -> PlannerTrainResult:
    """Train a planner into `run_dir` on the codes of `cfg.tokenizer`.

    Returns:
        PlannerTrainResult with the steps run and the last held-out evaluation.
    """
    if not cfg.tokenizer:
        raise UserError("no tokenizer given: add tokenizer=TOKENIZER_RUN_DIR")
    if not 0.0 <= cfg.goal_dropout <= 1.0:
        raise UserError(f"goal_dropout must be in [0, 1], got {cfg.goal_dropout}")
    cfg.search.validate()
    current = tokenizer_hash(cfg.tokenizer)
    if cfg.tokenizer_hash not in (None, current):
        raise UserError(f"tokenizer {cfg.tokenizer} has hash {current}, the config asks for {cfg.tokenizer_hash}")
    run_dir = Path(run_dir)
    if resume and (run_dir / CONFIG_FILE).is_file():  # runs trained before the field existed resume without it
        relative = load_config(PlannerConfig, run_dir / CONFIG_FILE).tokenizer_from_run
    else:
        relative = os.path.relpath(Path(cfg.tokenizer).resolve(), run_dir.resolve())
    cfg = dataclasses.replace(cfg, tokenizer_hash=current, tokenizer_from_run=relative)
    prepare_run_dir(run_dir, cfg, resume)
    acc = make_accelerator(cfg.train, run_dir)
    tok = IdeaTokenizer.from_pretrained(cfg.tokenizer, device=acc.device)  # encodes the corpus on the training device
    if acc.is_main_process:
        train_codes, eval_codes = load_codes(cfg, tok)  # the main process encodes; the others read the cache
    acc.wait_for_everyone()
    if not acc.is_main_process:
        train_codes, eval_codes = load_codes(cfg, tok)
    tc = cfg.train
    windows, eval_windows = Windows(train_codes, cfg.data.window), Windows(eval_codes, cfg.data.window)
    plan = StepBatches(
        len(windows), tc.batch_size, tc.seed, acc.process_index, acc.num_processes, windows.lengths, tc.bucket_pool
    )
    planner = build_planner(cfg, tok)
    vocab = planner.vocab
    stage = Stage.prepare(acc, planner, cfg, tc, run_dir, resume, "planner")
    model, start = stage.model, stage.start
    acc.print(
        f"training planner: {len(windows)} windows ({train_codes.num_docs} docs, {len(train_codes.codes)} ideas), "
        f"{sum(p.numel() for p in planner.parameters()) / 1e6:.2f}M params, steps {start}..{tc.max_steps}"
    )

    def loss_fn(micro: int) -> tuple[torch.Tensor, dict[str, float]]:
        indices, seed = plan.indices(micro), tc.seed * 1_000_003 + micro
        batch = windows.batch(indices, vocab, cfg.goal_dropout, seed=seed, goal_distance=cfg.model.goal_distance)
        nll, mask = model(*batch.to(acc.device).args())
        loss = nll.sum() / mask.sum()
        bits_per_idea = float(nll.detach().sum()) / float(batch.mask.sum()) / math.log(2)  # END bits included
        return loss, {"loss": loss.item(), "bits_per_idea": bits_per_idea}

    def eval_fn() -> dict[str, float]:
        stats = teacher_forced_bits(acc.unwrap_model(model), eval_windows, n_windows=tc.eval_ideas)
        return {"bits_per_idea": stats.bits_per_idea, "bits_level1": stats.bits_per_idea_by_level["1"]}

    result = stage.run(loss_fn, eval_fn)
    stage.finish(lambda trained: save_weights(trained, run_dir / WEIGHTS_FILE))
    return PlannerTrainResult(run_dir, result.steps, stage.seconds, result.last_eval)
