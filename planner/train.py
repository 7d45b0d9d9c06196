"""Stage 3: train the planner on the code corpus of a frozen idea tokenizer, with Accelerate.

    hiertok train planner --config configs/planner/tiny.yaml --out runs/plan tokenizer=runs/tok [--resume]

Stage 2 (encoding the corpus into code shards) runs here on first use and is cached under the tokenizer run.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hiertok.config import DataConfig, TrainConfig
from hiertok.data.corpus import DocumentChoice, heldout_split, train_split
from hiertok.loop import run_steps
from hiertok.tokenizer import IdeaTokenizer
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
from planner.evaluate import teacher_forced_bits
from planner.model import Planner, PlannerModelConfig
from planner.search import SearchConfig
from planner.shards import CodeCorpus, codes_for, tokenizer_hash
from planner.vocab import CodeVocab
from planner.windows import Windows

WEIGHTS_FILE = "model.safetensors"


@dataclass
class PlannerData(DocumentChoice):
    """Which documents the planner learns from, and how they are cut into training windows."""

    window: int = 32  # ideas per training window


def planner_train_defaults() -> TrainConfig:
    """The planner's own defaults (the tiny setting): sequences of ideas, not ideas, make a batch."""
    return TrainConfig(
        batch_size=32, lr=2e-3, warmup_steps=100, max_steps=2200, eval_every=2200, eval_ideas=256, save_every=1000
    )


@dataclass
class PlannerConfig:
    """The full config of a planner run."""

    tokenizer: str = ""  # the idea tokenizer's run directory (required)
    tokenizer_hash: str | None = None  # recorded at training; a planner refuses a tokenizer that differs
    data: PlannerData = field(default_factory=PlannerData)
    model: PlannerModelConfig = field(default_factory=PlannerModelConfig)
    train: TrainConfig = field(default_factory=planner_train_defaults)  # eval_ideas: held-out windows
    levels: int | None = None  # plan the first k levels (the gist; the decoder expands from the prefix); None: all
    goal_dropout: float = 0.5  # fraction of training windows shown without their goal
    # Defaults of `hiertok generate`: beam 4, each planned idea decoded up to 4 times, until one follows the plan.
    search: SearchConfig = field(default_factory=lambda: SearchConfig(num_beams=4, decode_candidates=4))


@dataclass
class PlannerTrainResult:
    run_dir: Path
    steps: int
    seconds: float
    last_eval: dict[str, float]


def data_config(cfg: PlannerConfig, tok: IdeaTokenizer) -> DataConfig:
    """The tokenizer's data settings with the planner's choice of documents."""
    return cfg.data.apply(tok.cfg.data)


def planned_levels(cfg: PlannerConfig, tok: IdeaTokenizer) -> int:
    """How many levels the planner plans (one-line error when the tokenizer has fewer)."""
    if cfg.levels is None:
        return tok.levels
    if not 1 <= cfg.levels <= tok.levels:
        raise ValueError(f"levels must be in 1..{tok.levels} (the tokenizer's levels), got {cfg.levels}")
    return cfg.levels


def load_codes(cfg: PlannerConfig, tok: IdeaTokenizer) -> tuple[CodeCorpus, CodeCorpus]:
    """Training and held-out codes (encoded on first use, then read from the shard cache), planned levels only."""
    data = data_config(cfg, tok)
    k = planned_levels(cfg, tok)
    return (
        codes_for(tok, cfg.tokenizer, data, "train", train_split(data)).prefix(k),
        codes_for(tok, cfg.tokenizer, data, "heldout", heldout_split(data)).prefix(k),
    )


def build_planner(cfg: PlannerConfig, tok: IdeaTokenizer) -> Planner:
    torch.manual_seed(cfg.train.seed)
    return Planner(cfg.model, CodeVocab(tuple(tok.codebook_sizes[: planned_levels(cfg, tok)])))


def train(cfg: PlannerConfig, run_dir: str | Path, resume: bool = False) -> PlannerTrainResult:
    """Train a planner into `run_dir` on the codes of `cfg.tokenizer`.

    Returns:
        PlannerTrainResult with the steps run and the last held-out evaluation.
    """
    if not cfg.tokenizer:
        raise ValueError("no tokenizer given: add tokenizer=TOKENIZER_RUN_DIR")
    if not 0.0 <= cfg.goal_dropout <= 1.0:
        raise ValueError(f"goal_dropout must be in [0, 1], got {cfg.goal_dropout}")
    cfg.search.validate()
    current = tokenizer_hash(cfg.tokenizer)
    if cfg.tokenizer_hash not in (None, current):
        raise ValueError(f"tokenizer {cfg.tokenizer} has hash {current}, the config asks for {cfg.tokenizer_hash}")
    cfg = dataclasses.replace(cfg, tokenizer_hash=current)
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, cfg, resume)
    acc = make_accelerator(cfg.train, run_dir)
    tok = IdeaTokenizer.from_pretrained(cfg.tokenizer)
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
    optimizer, scheduler = make_optimizer(planner, tc)
    model, optimizer = acc.prepare(planner, optimizer)
    acc.register_for_checkpointing(scheduler)
    if acc.log_with:
        acc.init_trackers("hiertok-planner")
    ckpt = Checkpoints(acc, run_dir, tc.keep_checkpoints)
    log = MetricsLog(acc, run_dir)
    start = ckpt.resume() if resume else 0
    log.truncate_after(start)
    acc.print(
        f"training planner: {len(windows)} windows ({train_codes.num_docs} docs, {len(train_codes.codes)} ideas), "
        f"{sum(p.numel() for p in planner.parameters()) / 1e6:.2f}M params, steps {start}..{tc.max_steps}"
    )

    def loss_fn(micro: int) -> tuple[torch.Tensor, dict[str, float]]:
        batch = windows.batch(plan.indices(micro), vocab, cfg.goal_dropout, seed=tc.seed * 1_000_003 + micro)
        nll, mask = model(*batch.to(acc.device).args())
        loss = nll.sum() / mask.sum()
        bits_per_idea = float(nll.detach().sum()) / float(batch.mask.sum()) / math.log(2)  # END bits included
        return loss, {"loss": loss.item(), "bits_per_idea": bits_per_idea}

    def eval_fn() -> dict[str, float]:
        stats = teacher_forced_bits(acc.unwrap_model(model), eval_windows, n_windows=tc.eval_ideas)
        return {"bits_per_idea": stats.bits_per_idea, "bits_level1": stats.bits_per_idea_by_level["1"]}

    t0 = time.perf_counter()
    result = run_steps(acc, model, optimizer, scheduler, tc, loss_fn, eval_fn, ckpt, log, start, "planner")
    if result.finished and acc.is_main_process:  # an unfinished run keeps only its checkpoint
        save_weights(acc.unwrap_model(model), run_dir / WEIGHTS_FILE)
    end_stage(acc)
    return PlannerTrainResult(run_dir, result.steps, time.perf_counter() - t0, result.last_eval)
