"""Top-k / nucleus filtering of logits, shared by the token decoder and the planner's sampling."""

from __future__ import annotations

import torch
from torch import Tensor


def filter_logits(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Mask logits outside the top-k / nucleus top-p set with -inf.

    Args:
        logits: (B, V).
        top_k: keep the k largest (0: keep all).
        top_p: keep the smallest set whose probability mass reaches top_p (1: keep all).

    Returns:
        (B, V) filtered logits.
    """
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        remove = cum - sorted_logits.softmax(-1) >= top_p  # keep the token that crosses top_p
        remove_orig = torch.zeros_like(remove).scatter(1, order, remove)
        logits = logits.masked_fill(remove_orig, float("-inf"))
    return logits
