"""The flat baseline: a token-level x-transformers LM over the same BPE tokens, one document at a time.

A document is [BOS] tokens [EOS]; documents longer than the context are cut into windows. Scoring uses
overlapping windows (stride = context / 2) so that every token after the first window still sees at
least half a context of history, as is usual for perplexity with a bounded context.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from x_transformers import TransformerWrapper

from hiertok.config import TrainConfig, load_config
from hiertok.data.bpe import BPE
from hiertok.data.corpus import DocumentChoice
from hiertok.layers import rotary_layers
from hiertok.tokenizer import BPE_FILE
from hiertok.training import CONFIG_FILE, WEIGHTS_FILE, load_weights


@dataclass
class FlatLMConfig:
    """Sizes of the flat LM. depth 0 = chosen to match the parameters of the run in `match` (see BaselineConfig)."""

    dim: int = 128
    depth: int = 4
    heads: int = 4
    dim_head: int = 64  # width of one attention head
    context: int = 256  # tokens per window
    dropout: float = 0.0


class FlatLM(nn.Module):
    """Next-token model over BPE ids."""

    def __init__(self, cfg: FlatLMConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.net = TransformerWrapper(
            num_tokens=vocab_size,
            max_seq_len=cfg.context,
            use_abs_pos_emb=False,
            emb_dropout=cfg.dropout,
            attn_layers=rotary_layers(
                causal=True, dim=cfg.dim, depth=cfg.depth, heads=cfg.heads, dropout=cfg.dropout, dim_head=cfg.dim_head
            ),
        )

    def forward(self, tokens: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Per-token negative log-likelihood.

        Args:
            tokens: (B, T) ids, right-padded.
            mask: (B, T) True at real tokens.

        Returns:
            nll (B, T-1) nats of tokens[:, 1:] (0 at padding) and its mask (B, T-1).
        """
        logits = self.net(tokens[:, :-1])
        nll = F.cross_entropy(rearrange(logits.float(), "b t v -> b v t"), tokens[:, 1:], reduction="none")
        target_mask = mask[:, 1:]
        return nll * target_mask, target_mask


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def depth_for(cfg: FlatLMConfig, vocab_size: int, target: int) -> int:
    """The depth whose parameter count is closest to `target` at this width."""
    base = count_params(FlatLM(dataclasses.replace(cfg, depth=1), vocab_size))
    per_layer = count_params(FlatLM(dataclasses.replace(cfg, depth=2), vocab_size)) - base
    return max(1, round((target - base) / per_layer) + 1)


@dataclass
class TokenWindows:
    """Windows over tokenized documents: rows of (doc, start, end) into each doc's [BOS] ids [EOS].

    `score_from[i]` is the first position of window i whose token is scored (earlier ones are context).
    """

    docs: list[np.ndarray]
    rows: np.ndarray  # (n, 3)
    score_from: np.ndarray  # (n,)

    @classmethod
    def build(cls, docs: list[np.ndarray], context: int, overlap: bool) -> TokenWindows:
        """Windows of at most context + 1 tokens; with `overlap`, stride context/2 (for scoring)."""
        stride = max(1, context // 2) if overlap else context
        rows, score = [], []
        for d, ids in enumerate(docs):
            n = len(ids)
            start = 0
            while True:
                end = min(start + context + 1, n)
                rows.append((d, start, end))
                # Targets before context - stride were scored by the previous window.
                score.append(0 if start == 0 else context - stride)
                if end >= n:
                    break
                start += stride
        return cls(docs, np.asarray(rows, dtype=np.int64).reshape(-1, 3), np.asarray(score, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def lengths(self) -> np.ndarray:
        return self.rows[:, 2] - self.rows[:, 1]

    def batch(self, indices, pad_id: int) -> tuple[Tensor, Tensor, Tensor]:
        """tokens (B, T), mask (B, T), and the mask of targets to score (B, T-1)."""
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        t = int((rows[:, 2] - rows[:, 1]).max())
        tokens = np.full((len(rows), t), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), t), dtype=bool)
        for i, (d, lo, hi) in enumerate(rows):
            tokens[i, : hi - lo] = self.docs[d][lo:hi]
            mask[i, : hi - lo] = True
        scored = mask[:, 1:].copy()
        for i, first in enumerate(self.score_from[np.asarray(indices, dtype=np.int64)]):
            scored[i, :first] = False
        return torch.as_tensor(tokens), torch.as_tensor(mask), torch.as_tensor(scored)


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


def load_baseline(run_dir: str | Path) -> tuple[FlatLM, BaselineConfig]:
    """A trained baseline and its config (one-line errors for missing or mismatched files)."""
    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir / name} not found: not a trained baseline run")
    cfg = load_config(BaselineConfig, run_dir / CONFIG_FILE)
    lm = FlatLM(cfg.model, BPE.load(Path(cfg.tokenizer) / BPE_FILE).vocab_size)
    load_weights(lm, run_dir / WEIGHTS_FILE)
    return lm, cfg
