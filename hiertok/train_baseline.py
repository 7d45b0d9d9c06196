"""Train the flat token-level baseline on the same documents and BPE tokens as a tokenizer run.

    hiertok train baseline --config configs/baseline/tiny.yaml --out runs/flat tokenizer=runs/tok match=runs/plan

With `model.depth=0` and `match=PLANNER_RUN`, the depth is chosen so that the flat LM has about as many
parameters as the whole hierarchical system it is compared with (tokenizer encoder + decoder + planner).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model

from hiertok.config import TrainConfig, load_config
from hiertok.data.bpe import BPE
from hiertok.data.corpus import DocumentChoice, heldout_split, train_split
from hiertok.flat_lm import FlatLM, FlatLMConfig, TokenWindows, count_params, depth_for
from hiertok.loop import run_steps
from hiertok.tokenizer import BPE_FILE, CONFIG_FILE, IdeaTokenizer
from hiertok.training import (
    Checkpoints,
    MetricsLog,
    StepBatches,
    end_stage,
    make_accelerator,
    make_optimizer,
    prepare_run_dir,
    save_weights,
)

WEIGHTS_FILE = "model.safetensors"


@dataclass
class BaselineConfig:
    """The full config of a flat-baseline run."""

    tokenizer: str = ""  # tokenizer run whose BPE tokens and documents the baseline uses (required)
    match: str | None = None  # a planner run; with model.depth=0 the depth matches its system's parameters
    params_target: int | None = None  # recorded: the parameter count matched (None when depth is given)
    data: DocumentChoice = field(default_factory=DocumentChoice)
    model: FlatLMConfig = field(default_factory=FlatLMConfig)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(batch_size=16, lr=1e-3, max_steps=1500, eval_every=500, eval_ideas=64)
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
        raise ValueError("no tokenizer given: add tokenizer=TOKENIZER_RUN_DIR (its BPE and documents are used)")
    tok = IdeaTokenizer.from_pretrained(cfg.tokenizer)
    if cfg.model.depth == 0:
        if not cfg.match:
            raise ValueError("model.depth=0 needs match=PLANNER_RUN_DIR to match its parameters")
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
    optimizer, scheduler = make_optimizer(lm, tc)
    model, optimizer = acc.prepare(lm, optimizer)
    acc.register_for_checkpointing(scheduler)
    ckpt, log = Checkpoints(acc, run_dir, tc.keep_checkpoints), MetricsLog(acc, run_dir)
    start = ckpt.resume() if resume else 0
    log.truncate_after(start)
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

    t0 = time.perf_counter()
    result = run_steps(acc, model, optimizer, scheduler, tc, loss_fn, eval_fn, ckpt, log, start, "baseline")
    if result.finished and acc.is_main_process:
        save_weights(acc.unwrap_model(model), run_dir / WEIGHTS_FILE)
    end_stage(acc)
    return BaselineTrainResult(run_dir, result.steps, time.perf_counter() - t0, count_params(lm), result.last_eval)


def load_baseline(run_dir: str | Path) -> tuple[FlatLM, BaselineConfig]:
    """A trained baseline and its config (one-line errors for missing or mismatched files)."""
    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir / name} not found: not a trained baseline run")
    cfg = load_config(BaselineConfig, run_dir / CONFIG_FILE)
    lm = FlatLM(cfg.model, BPE.load(Path(cfg.tokenizer) / BPE_FILE).vocab_size)
    missing, unexpected = load_model(lm, run_dir / WEIGHTS_FILE, strict=False)
    if missing or unexpected:
        raise ValueError(f"{run_dir / WEIGHTS_FILE}: weights do not match the config")
    return lm, cfg
