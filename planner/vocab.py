"""The planner's code vocabulary: every level's codes in one id space, plus end-of-document.

Layout: id 0 is END (end of document); level l's code c has id 1 + offset[l] + c. END sits right before
level 1's codes so that the first level's choices (end here, or which next idea) are one contiguous slice,
and every level's output is a slice of one projection: the per-level mask is the slice itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

END = 0


@dataclass(frozen=True)
class CodeVocab:
    """Maps (level, code) pairs to unified ids and back.

    Args:
        codebook_sizes: codes per level, coarse to fine.
    """

    codebook_sizes: tuple[int, ...]

    @property
    def levels(self) -> int:
        return len(self.codebook_sizes)

    @property
    def size(self) -> int:
        return 1 + sum(self.codebook_sizes)

    def offset(self, level: int) -> int:
        """Unified id of code 0 at `level` (0-based)."""
        return 1 + sum(self.codebook_sizes[:level])

    def level_slice(self, level: int) -> slice:
        """Ids a prediction at `level` may choose from: END and level 1's codes, or level l's codes."""
        lo = self.offset(level)
        return slice(0 if level == 0 else lo, lo + self.codebook_sizes[level])

    @property
    def slice_sizes(self) -> list[int]:
        """Length of each `level_slice`, in order: they tile the id space (END belongs to level 1's)."""
        return [1 + self.codebook_sizes[0], *self.codebook_sizes[1:]]

    def to_ids(self, codes: Tensor) -> Tensor:
        """(..., L) per-level codes -> (..., L) unified ids."""
        offsets = torch.tensor([self.offset(lv) for lv in range(self.levels)], device=codes.device)
        return codes.long() + offsets

    def to_codes(self, ids: Tensor) -> Tensor:
        """(..., L) unified ids -> (..., L) per-level codes (the inverse of `to_ids`)."""
        offsets = torch.tensor([self.offset(lv) for lv in range(self.levels)], device=ids.device)
        return ids.long() - offsets

    def choice_to_id(self, level: int, choice: Tensor) -> Tensor:
        """Index within `level_slice(level)` -> unified id."""
        return choice + self.level_slice(level).start
