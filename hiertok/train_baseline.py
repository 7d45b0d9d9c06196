"""Train the flat token-level baseline on the same documents and BPE tokens as a tokenizer run.

    hiertok train baseline --config configs/baseline/tiny.yaml --out runs/flat tokenizer=runs/tok match=runs/plan

With `model.depth=0` and `match=PLANNER_RUN`, the depth is chosen so that the flat LM has about as many
parameters as the whole hierarchical system it is compared with (tokenizer encoder + decoder + planner).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hiertok.data.corpus import heldout_split, train_split
from hiertok.errors import UserError
from hiertok.flat_lm import BaselineConfig, FlatLM, TokenWindows, count_params, depth_for
from hiertok.stage import Stage
from hiertok.tokenizer import IdeaTokenizer
from hiertok.training import (
    WEIGHTS_FILE,
    StepBatches,
    make_accelerator,
    prepare_run_dir,
    save_weights,
)


def document_ids(tok: IdeaTokenizer, docs) -> list[np.ndarray]:
    """[BOS] + BPE ids + [EOS] of each document."""
    bpe = tok.bpe
    return [np.asarray([bpe.bos_id, *bpe.encode(d), bpe.eos_id], dtype=np.int64) for d in docs]


def hierarchy_params(planner_run: str | Path) -> int:
    """Parameters of a planner and of the tokenizer it was trained on (what a matched baseline matches)."""
    from hiertok.pipeline import Pipeline  # the pipeline joins the packages; imported only when matching

    pipe = Pipeline.from_pretrained(planner_run)
    return count_params(pipe.planner) + count_params(pipe.tokenizer.model)


@torch.no_grad()
def flat_nats(
    model: FlatLM, windows: TokenWindows, pad_id: int, limit: int | None = None, batch: int = 16
) -> tuple[float, int]:
    """Summed nats of every scored token of the first `limit` windows, and the number of those tokens."""
    model.eval()
    device = next(model.parameters()).device
    n = len(windows) if limit is None else min(limit, len(windows))
    order = np.argsort(windows.lengths[:n], kind="stable")
    total, count = 0.0, 0
    for lo in range(0, n, batch):
        tokens, mask, scored = windows.batch(order[lo : lo + batch], pad_id)
        nll, _ = model(tokens.to(device), mask.to(device))
        total += float((nll * scored.to(device)).sum())
        count += int(scored.sum())
    return total, count


@dataclass
class BaselineTrainResult:
    run_dir: Path
    steps: int
    seconds: float
    params: int
    last_eval: dict[str, float]


def train(cfg: BaselineConfig, run_dir: str | Path, resume: bool = False) -> BaselineTrainResult:
    """Train the flat baseline into `run_dir` (train.eval_ideas = held-out windows per periodic evaluation)."""
    if not cfg.tokenizer:
        raise UserError("no tokenizer given: add tokenizer=TOKENIZER_RUN_DIR (its BPE and documents are used)")
    tok = IdeaTokenizer.from_pretrained(cfg.tokenizer)
    if cfg.model.depth == 0:
        if not cfg.match:
            raise UserError("model.depth=0 needs match=PLANNER_RUN_DIR to match its parameters")
        target = hierarchy_params(cfg.match)
        depth = depth_for(cfg.model, tok.bpe.vocab_size, target)
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, depth=depth), params_target=target)
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, cfg, resume)
    acc = make_accelerator(cfg.train, run_dir)
    data = cfg.data.apply(tok.cfg.data)
    ctx = cfg.model.context
    windows = TokenWindows.build(document_ids(tok, train_split(data).docs()), ctx, overlap=False)
    eval_windows = TokenWindows.build(document_ids(tok, heldout_split(data).docs()), ctx, overlap=True)
    tc = cfg.train
    plan = StepBatches(
        len(windows), tc.batch_size, tc.seed, acc.process_index, acc.num_processes, windows.lengths, tc.bucket_pool
    )
    torch.manual_seed(tc.seed)
    lm = FlatLM(cfg.model, tok.bpe.vocab_size)
    stage = Stage.prepare(acc, lm, cfg, tc, run_dir, resume, "baseline")
    model = stage.model
    acc.print(f"training flat baseline: {len(windows)} windows, {count_params(lm) / 1e6:.2f}M params")
    pad = tok.bpe.pad_id

    def loss_fn(micro: int):
        tokens, mask, _ = windows.batch(plan.indices(micro), pad)
        nll, tmask = model(tokens.to(acc.device), mask.to(acc.device))
        loss = nll.sum() / tmask.sum()
        return loss, {"loss": loss.item()}

    def eval_fn():
        nats, count = flat_nats(acc.unwrap_model(model), eval_windows, pad, limit=tc.eval_ideas)
        return {"nats_per_token": nats / max(1, count)}

    result = stage.run(loss_fn, eval_fn)
    stage.finish(lambda trained: save_weights(trained, run_dir / WEIGHTS_FILE))
    return BaselineTrainResult(run_dir, result.steps, stage.seconds, count_params(lm), result.last_eval)
