"""`Codes`: the multi-level idea codes of a batch of documents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from hiertok.errors import UserError


@dataclass
class Codes:
    """Idea codes of documents, coarse to fine.

    ids: (docs, ideas, levels) int64 codes; 0 where `mask` is False.
    mask: (docs, ideas) True where an idea exists (documents have different numbers of ideas).
    codebook_sizes: codebook size of each level.
    """

    ids: Tensor
    mask: Tensor
    codebook_sizes: list[int]

    def __post_init__(self) -> None:
        if self.ids.ndim != 3 or self.mask.shape != self.ids.shape[:2]:
            raise UserError(
                f"codes must be (docs, ideas, levels) with a (docs, ideas) mask, got "
                f"{tuple(self.ids.shape)} and {tuple(self.mask.shape)}"
            )
        if self.ids.dtype.is_floating_point or self.ids.dtype.is_complex or self.ids.dtype == torch.bool:
            raise TypeError(f"code ids must be integers, got {self.ids.dtype}")
        if self.mask.dtype != torch.bool:
            raise TypeError(f"the codes' mask must be bool, got {self.mask.dtype}")
        if self.ids.shape[-1] > len(self.codebook_sizes):
            raise UserError(
                f"codes have {self.ids.shape[-1]} levels but only {len(self.codebook_sizes)} codebook sizes are known"
            )

    @property
    def levels(self) -> int:
        return self.ids.shape[-1]

    @property
    def num_docs(self) -> int:
        return self.ids.shape[0]

    def prefix(self, k: int) -> Codes:
        """The first k levels."""
        if not 1 <= k <= self.levels:
            raise UserError(f"prefix must be in 1..{self.levels}, got {k}")
        return Codes(self.ids[..., :k], self.mask, self.codebook_sizes)

    def flat(self) -> Tensor:
        """(N, levels) codes of every existing idea, documents in order."""
        return self.ids[self.mask]

    def to_lists(self) -> list[list[list[int]]]:
        """Per document, per idea, the codes as plain ints (JSON-ready)."""
        return [
            [self.ids[d, i].tolist() for i in range(self.ids.shape[1]) if self.mask[d, i]] for d in range(self.num_docs)
        ]

    @classmethod
    def from_flat(cls, flat: Tensor, counts: Sequence[int], codebook_sizes: Sequence[int]) -> Codes:
        """The padded grid of documents' ideas listed one after another.

        Args:
            flat: (N, L) codes of every idea, document after document.
            counts: ideas per document (they sum to N).
            codebook_sizes: codebook size per level.

        Returns:
            Codes with ids (docs, max ideas, L) and mask (docs, max ideas).
        """
        counts_t = torch.as_tensor(list(counts), dtype=torch.long)
        if int(counts_t.sum()) != len(flat):
            raise UserError(f"{len(flat)} ideas for documents of {int(counts_t.sum())} ideas in all")
        width = int(counts_t.max()) if len(counts_t) else 0
        mask = torch.arange(width)[None, :] < counts_t[:, None]
        ids = torch.zeros((len(counts_t), width, flat.shape[-1]), dtype=torch.long)
        ids[mask] = flat.long()
        return cls(ids, mask, list(codebook_sizes))

    @classmethod
    def from_lists(cls, docs: Sequence[Sequence[Sequence[int]]], codebook_sizes: list[int]) -> Codes:
        """Inverse of `to_lists`; every idea must have the same number of levels."""
        depths = {len(idea) for doc in docs for idea in doc}
        if len(depths) > 1:
            raise UserError(f"ideas have different numbers of levels: {sorted(depths)}")
        levels = depths.pop() if depths else len(codebook_sizes)
        rows = [list(map(int, idea)) for doc in docs for idea in doc]
        flat = torch.tensor(rows, dtype=torch.long) if rows else torch.zeros((0, levels), dtype=torch.long)
        return cls.from_flat(flat, [len(d) for d in docs], codebook_sizes)
