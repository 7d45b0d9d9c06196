"""A planner run's config, and what inference and training both need from it: the planned levels, the code
corpus, an untrained planner of the right shape. Inference (`hiertok.pipeline`) imports this, not the trainer."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hiertok.config import DataConfig, TrainConfig
from hiertok.data.corpus import DocumentChoice, heldout_split, train_split
from hiertok.errors import UserError
from hiertok.tokenizer import IdeaTokenizer
from planner.model import Planner, PlannerModelConfig
from planner.search import SearchConfig
from planner.shards import CodeCorpus, codes_for
from planner.vocab import CodeVocab


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
    # recorded at training: the tokenizer's path relative to this run's directory, so that a run moved together
    # with its tokenizer (or opened from another working directory) still finds it
    tokenizer_from_run: str | None = None
    data: PlannerData = field(default_factory=PlannerData)
    model: PlannerModelConfig = field(default_factory=PlannerModelConfig)
    train: TrainConfig = field(default_factory=planner_train_defaults)  # eval_ideas: held-out windows
    levels: int | None = None  # plan the first k levels (the gist; the decoder expands from the prefix); None: all
    goal_dropout: float = 0.5  # fraction of training windows shown without their goal
    # Defaults of `hiertok generate`: beam 4, each planned idea decoded up to 4 times, until one follows the plan.
    search: SearchConfig = field(default_factory=lambda: SearchConfig(num_beams=4, decode_candidates=4))


def data_config(cfg: PlannerConfig, tok: IdeaTokenizer) -> DataConfig:
    """The tokenizer's data settings with the planner's choice of documents."""
    return cfg.data.apply(tok.cfg.data)


def planned_levels(cfg: PlannerConfig, tok: IdeaTokenizer) -> int:
    """How many levels the planner plans (one-line error when the tokenizer has fewer)."""
    if cfg.levels is None:
        return tok.levels
    if not 1 <= cfg.levels <= tok.levels:
        raise UserError(f"levels must be in 1..{tok.levels} (the tokenizer's levels), got {cfg.levels}")
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
    """An untrained planner over the planned levels of `tok`'s codes (seeded: the same config gives the same start)."""
    torch.manual_seed(cfg.train.seed)
    return Planner(cfg.model, CodeVocab(tuple(tok.codebook_sizes[: planned_levels(cfg, tok)])))
