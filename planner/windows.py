"""Training windows over a code corpus and their batches.

A document longer than the window is cut into consecutive windows; a window that does not start the
document is marked as a continuation, and only the one that ends it is trained to predict END. Every
window's goal is its document's final idea; for a planner of goals at a given distance (`goal_distance`), a window
shown its goal is cut at a goal drawn inside it, and each position is told how far the goal is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hiertok.errors import UserError
from planner.model import goal_steps_left
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
    left: Tensor | None = None  # (B, T + 1) distances to the goal (planner.model.goal_steps_left), or None

    def to(self, device) -> PlanBatch:
        fields = (getattr(self, f) for f in self.__dataclass_fields__)
        return PlanBatch(*(None if t is None else t.to(device) for t in fields))

    def args(self) -> tuple[Tensor | None, ...]:
        return self.ideas, self.mask, self.ends, self.goal, self.goal_on, self.cont, self.left


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

    def batch(
        self,
        indices,
        vocab: CodeVocab,
        goal_dropout: float = 0.0,
        seed: int | None = None,
        goal_distance: int = 0,
    ) -> PlanBatch:
        """Collate windows `indices`; the goal is dropped with probability `goal_dropout` (seeded). With
        `goal_distance`, a window shown its goal ends at a goal drawn uniformly from its ideas after the first."""
        rows = self.rows[np.asarray(indices, dtype=np.int64)].copy()
        rng = np.random.default_rng(seed)
        goal_on = rng.random(len(rows)) >= goal_dropout
        doc_end = self.corpus.doc_offsets[rows[:, 0] + 1]
        goal_index = doc_end - 1
        if goal_distance:
            cut = goal_on & (rows[:, 2] - rows[:, 1] > 1)
            drawn = rng.integers(rows[:, 1] + 1, np.maximum(rows[:, 2], rows[:, 1] + 2))
            goal_index = np.where(cut, drawn, np.where(goal_on, rows[:, 2] - 1, goal_index))
            rows[:, 2] = np.where(goal_on, goal_index + 1, rows[:, 2])
        t = int((rows[:, 2] - rows[:, 1]).max())
        levels = self.corpus.codes.shape[1]
        ideas = np.zeros((len(rows), t, levels), dtype=np.int64)
        mask = np.zeros((len(rows), t), dtype=bool)
        for i, (_, lo, hi) in enumerate(rows):
            ideas[i, : hi - lo] = self.corpus.codes[lo:hi]
            mask[i, : hi - lo] = True
        doc_start = self.corpus.doc_offsets[rows[:, 0]]
        goal = self.corpus.codes[goal_index].astype(np.int64)
        left = None
        if goal_distance:
            goal_at = torch.as_tensor(np.where(goal_on, goal_index - rows[:, 1], -1))
            left = goal_steps_left(goal_at, 0, t + 1)
        return PlanBatch(
            ideas=vocab.to_ids(torch.as_tensor(ideas)),
            mask=torch.as_tensor(mask),
            ends=torch.as_tensor(rows[:, 2] == doc_end),
            goal=vocab.to_ids(torch.as_tensor(goal)),
            goal_on=torch.as_tensor(goal_on),
            cont=torch.as_tensor(rows[:, 1] != doc_start),
            left=left,
        )
