"""Training windows over a code corpus and their batches.

A document longer than the window is cut into consecutive windows; a window that does not start the
document is marked as a continuation, and only the one that ends it is trained to predict END. Every
window's goal is its document's final idea.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hiertok.errors import UserError
from planner.shards import CodeCorpus
from planner.vocab import CodeVocab


@dataclass
class PlanBatch:
    """A batch of windows, in the planner's unified ids (see Planner.forward)."""

    ideas: Tensor  # (B, T, L)
    mask: Tensor  # (B, T)
    ends: Tensor  # (B,)
    goal: Tensor  # (B, L)
    goal_on: Tensor  # (B,)
    cont: Tensor  # (B,)

    def to(self, device) -> PlanBatch:
        return PlanBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))

    def args(self) -> tuple[Tensor, ...]:
        return self.ideas, self.mask, self.ends, self.goal, self.goal_on, self.cont


class Windows:
    """All windows of a code corpus: (document, first idea, end idea) triples.

    Args:
        corpus: the encoded documents (empty documents are skipped).
        window: ideas per window at most.
    """

    def __init__(self, corpus: CodeCorpus, window: int):
        if window < 1:
            raise UserError(f"window must be >= 1, got {window}")
        self.corpus = corpus
        rows = []
        for d in range(corpus.num_docs):
            lo, hi = int(corpus.doc_offsets[d]), int(corpus.doc_offsets[d + 1])
            rows.extend((d, s, min(s + window, hi)) for s in range(lo, hi, window))
        self.rows = np.asarray(rows, dtype=np.int64).reshape(-1, 3)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def lengths(self) -> np.ndarray:
        return self.rows[:, 2] - self.rows[:, 1]

    def batch(self, indices, vocab: CodeVocab, goal_dropout: float = 0.0, seed: int | None = None) -> PlanBatch:
        """Collate windows `indices`; the goal is dropped with probability `goal_dropout` (seeded)."""
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        t = int((rows[:, 2] - rows[:, 1]).max())
        levels = self.corpus.codes.shape[1]
        ideas = np.zeros((len(rows), t, levels), dtype=np.int64)
        mask = np.zeros((len(rows), t), dtype=bool)
        for i, (_, lo, hi) in enumerate(rows):
            ideas[i, : hi - lo] = self.corpus.codes[lo:hi]
            mask[i, : hi - lo] = True
        doc_end = self.corpus.doc_offsets[rows[:, 0] + 1]
        doc_start = self.corpus.doc_offsets[rows[:, 0]]
        goal = self.corpus.codes[doc_end - 1].astype(np.int64)
        rng = np.random.default_rng(seed)
        return PlanBatch(
            ideas=vocab.to_ids(torch.as_tensor(ideas)),
            mask=torch.as_tensor(mask),
            ends=torch.as_tensor(rows[:, 2] == doc_end),
            goal=vocab.to_ids(torch.as_tensor(goal)),
            goal_on=torch.as_tensor(rng.random(len(rows)) >= goal_dropout),
            cont=torch.as_tensor(rows[:, 1] != doc_start),
        )
