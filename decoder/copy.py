"""Copying from the story: a pointer over the context's tokens, mixed with the decoder's vocabulary softmax.

A story fixes names, places and colours once; every later sentence repeats them. Cross-attention lets a small
decoder read them, but it must still map what it read back to the same token through its output layer, and a
2-layer decoder trained for minutes does that unreliably. A pointer-generator (See et al., 2017, "Get To The
Point") gives it the direct route: attention from the decoder's state over the context's token positions is a
distribution over the tokens found there, and a learned gate mixes it with the vocabulary softmax,

    p(x) = (1 - g) p_vocab(x) + g sum_{s: context token s is x} a_s.

The mixture is a proper distribution (a row without any context token has g = 0), so bits computed from it
remain a lossless code. x-transformers has no such head: it is written here on the decoder's final hidden
states.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CopyHead(nn.Module):
    """Mixes the vocabulary distribution with a copy distribution over the context's tokens."""

    def __init__(self, dim: int):
        super().__init__()
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.gate = nn.Linear(dim, 1)
        self.scale = dim**-0.5

    def forward(self, hidden: Tensor, logits: Tensor, context: Tensor, context_ids: Tensor) -> Tensor:
        """Log-probabilities of the next token.

        Args:
            hidden: (B, T, W) the decoder's final hidden states.
            logits: (B, T, V) its vocabulary logits.
            context: (B, S, W) the embedded story context it cross-attends to.
            context_ids: (B, S) the token id at each context position, -1 where it holds no token (padding, a
                code vector).

        Returns:
            (B, T, V) log p(x), a normalised distribution at every position (usable as logits).
        """
        copyable = context_ids >= 0  # (B, S)
        scores = torch.einsum("btw,bsw->bts", self.query(hidden), self.key(context)).float() * self.scale
        # A large negative, not -inf: a row with nothing to copy stays finite (its copy term is gated off below).
        attn = scores.masked_fill(~copyable[:, None], -1e9).softmax(-1)
        index = context_ids.clamp(min=0)[:, None].expand(-1, hidden.shape[1], -1)
        p_copy = torch.zeros_like(logits, dtype=torch.float32).scatter_add(-1, index, attn)
        gate = self.gate(hidden).float()  # (B, T, 1)
        gate = gate.masked_fill(~copyable.any(1)[:, None, None], float("-inf"))  # nothing to copy: vocabulary only
        vocab = F.logsigmoid(-gate) + logits.float().log_softmax(-1)
        found = p_copy > 0  # log 0 is -inf; taken through where() so that no gradient meets 1 / 0
        copied = (F.logsigmoid(gate) + torch.where(found, p_copy, 1.0).log()).masked_fill(~found, float("-inf"))
        return torch.logaddexp(vocab, copied)
