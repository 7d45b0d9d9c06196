"""Idea-learning losses: terms that shape what an idea vector holds beyond what reconstruction asks.

- `info_nce`: contrastive loss of queries against keys (positives by index, the other keys are negatives);
  used for next-idea prediction (query = prediction from the previous ideas, key = the next idea) and for
  re-encoding (query = the idea re-encoded from the decoder's soft output, key = the idea).
- `total_coding_rate`: R(Z) = 1/2 log det(I + d/(B eps^2) Z^T Z) of the batch's unit-norm vectors (MCR^2,
  Yu et al. 2020); maximising it spreads the vectors over all directions.
- `infonce_uniformity`: the repulsive half of InfoNCE, log-mean-exp of pairwise similarities.
- `NextIdeaPredictor`: a small MLP over the previous ideas' vectors (continuous next-idea prediction).

Written here because vector-quantize-pytorch and x-transformers provide neither; each is a few lines of
torch, tested against its formula on hand-checkable cases (tests/test_idea_losses.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def info_nce(queries: Tensor, keys: Tensor, positive: Tensor, tau: float) -> Tensor:
    """Mean over queries of -log softmax_j(cos(q_i, k_j) / tau)[positive_i].

    Args:
        queries: (B, D).
        keys: (N, D); key `positive[i]` is query i's positive, every other key a negative.
        positive: (B,) int64 indices into `keys`.
        tau: temperature.

    Returns:
        Scalar loss (nats).
    """
    logits = F.normalize(queries.float(), dim=-1) @ F.normalize(keys.float(), dim=-1).T / tau
    return F.cross_entropy(logits, positive)


def total_coding_rate(z: Tensor, eps: float) -> Tensor:
    """R(Z) = 1/2 log det(I_d + d / (B eps^2) Z^T Z) for the unit-normalised rows of z.

    Args:
        z: (B, d) vectors.
        eps: distortion; smaller eps rewards finer spread.

    Returns:
        Scalar rate in nats (larger = more spread; a loss uses its negative).
    """
    b, d = z.shape
    zn = F.normalize(z.float(), dim=-1)
    gram = torch.eye(d, device=z.device) + d / (b * eps**2) * zn.T @ zn
    return 0.5 * torch.logdet(gram)


def infonce_uniformity(z: Tensor, tau: float) -> Tensor:
    """Mean over i of log( 1/(B-1) * sum_{j != i} exp(cos(z_i, z_j) / tau) ): InfoNCE's repulsive term.

    Args:
        z: (B, d) vectors, B >= 2.
        tau: temperature.

    Returns:
        Scalar (lower = more uniform; 1/tau when all vectors coincide).
    """
    b = z.shape[0]
    zn = F.normalize(z.float(), dim=-1)
    sim = (zn @ zn.T / tau).masked_fill(torch.eye(b, dtype=torch.bool, device=z.device), float("-inf"))
    return (torch.logsumexp(sim, dim=-1) - torch.log(torch.tensor(b - 1.0))).mean()


class NextIdeaPredictor(nn.Module):
    """Predict an idea's vector from the vectors of the `context` ideas before it (nearest first).

    An MLP over their concatenation, a learned vector standing in for ideas before the document start:
    the context is a few ideas, so order-aware attention buys nothing an MLP lacks.
    """

    def __init__(self, dim_in: int, context: int, dim_out: int, hidden: int = 256):
        super().__init__()
        self.absent = nn.Parameter(torch.zeros(context, dim_in))
        self.net = nn.Sequential(
            nn.Linear(context * dim_in, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, dim_out),
        )

    def forward(self, previous: Tensor, present: Tensor) -> Tensor:
        """
        Args:
            previous: (B, C, D_in) vectors of the previous C ideas, nearest first.
            present: (B, C) False where the document had no such idea.

        Returns:
            (B, D_out) predicted vectors.
        """
        x = torch.where(present[..., None], previous, self.absent.to(previous.dtype))
        return self.net(rearrange(x, "b c d -> b (c d)"))


class ParallelTokens(nn.Module):
    """Every token of an idea predicted at once from its code vector and the token's position.

    An autoregressive decoder may ignore what the earlier tokens of its own idea predict (a frame's pixels after a
    square's first one), and then the codes stop carrying it (posterior collapse, Bowman et al. 2016). This head
    cannot read earlier tokens, so its loss asks the codes for the whole idea, place by place.
    """

    def __init__(self, code_dim: int, max_len: int, vocab_size: int, width: int = 128):
        super().__init__()
        self.from_code = nn.Linear(code_dim, width)
        self.position = nn.Embedding(max_len, width)
        self.out = nn.Sequential(nn.GELU(), nn.Linear(width, width), nn.GELU(), nn.Linear(width, vocab_size))

    def forward(self, codes: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        """Mean nats per real token.

        Args:
            codes: (B, D) the ideas' code vectors.
            tokens: (B, T) their tokens; mask: (B, T) real-token mask (T <= max_len).
        """
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        hidden = self.from_code(codes)[:, None] + self.position(positions)[None]
        logp = self.out(hidden).float().log_softmax(-1).gather(-1, tokens[..., None])[..., 0]
        return -(logp * mask).sum() / mask.sum().clamp(min=1)
