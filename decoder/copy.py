"""Copying from the story: a pointer over the context's tokens, mixed with the decoder's vocabulary softmax.

A story fixes names, places and colours once; every later sentence repeats them. Cross-attention lets a small
decoder read them, but it must still map what it read back to the same token through its output layer, and a
2-layer decoder trained for minutes does that unreliably. A pointer-generator (See et al., 2017, "Get To The
Point") gives it the direct route: attention from the decoder's state over the context's token positions is a
distribution over the tokens found there, and a learned gate mixes it with the vocabulary softmax,

    p(x) = (1 - g) p_vocab(x) + g sum_{s: context token s is x} a_s.

The mixture is a proper distribution (a row without any context token has g = 0), so bits computed from it
remain a lossless code. x-transformers has no such head: it is written here on the decoder's final hidden
states. Training and the codelength need only the targets' probabilities and the argmax: `target_log_prob`
computes them over the S context positions, without building the (B, T, V) mixture (only the vocabulary's
log-softmax, which the normaliser needs, stays vocabulary-sized).

The mixture's gradient reaches the pointer only through the gate: where the gate has closed (g ~ 0) the pointer
learns nothing, and where the pointer looks elsewhere the gate has no reason to open. A small decoder can settle
there for a whole kind of word (on the synthetic world, one seed never copied a colour: gate 0, pointer on the
object, the colour guessed from the vocabulary at 2.4 nats). `target_log_prob` therefore also returns the
pointer's own log-mass on the target where the context holds it, which training may maximise beside the
mixture (`model.loss.copy_pointer_weight`), as supervised pointer attention.
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

    def _parts(self, hidden: Tensor, context: Tensor, context_ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Log copy attention (B, T, S) over the copyable positions, and log(1 - g), log g (B, T, 1) of the gate."""
        copyable = context_ids >= 0  # (B, S)
        scores = torch.einsum("btw,bsw->bts", self.query(hidden), self.key(context)).float() * self.scale
        # A large negative, not -inf: a row with nothing to copy stays finite (its copy term is gated off below).
        log_attn = scores.masked_fill(~copyable[:, None], -1e9).log_softmax(-1)
        gate = self.gate(hidden).float()  # (B, T, 1)
        gate = gate.masked_fill(~copyable.any(1)[:, None, None], float("-inf"))  # nothing to copy: vocabulary only
        return log_attn, F.logsigmoid(-gate), F.logsigmoid(gate)

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
        log_attn, log_vocab, log_copy = self._parts(hidden, context, context_ids)
        attn = log_attn.exp()
        index = context_ids.clamp(min=0)[:, None].expand(-1, hidden.shape[1], -1)
        p_copy = torch.zeros_like(logits, dtype=torch.float32).scatter_add(-1, index, attn)
        return torch.logaddexp(log_vocab + logits.float().log_softmax(-1), log_copy + _log(p_copy))

    def target_log_prob(
        self, hidden: Tensor, logits: Tensor, context: Tensor, context_ids: Tensor, target: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """log p(target) and argmax_x p(x) of the mixture, computed over the context positions only, and the copy
        attention's own log-mass on the target.

        The argmax is the vocabulary's best token or a context token: any token outside the context has only
        its vocabulary term, so none beats the vocabulary's best; a context token's mixture is computed exactly.

        Args:
            hidden, logits, context, context_ids: as for `forward`.
            target: (B, T) token ids.

        Returns:
            log p(target) (B, T), the most likely token (B, T) and the pointer's log-mass on the target (B, T;
            -inf where the context does not hold it).
        """
        log_attn, log_vocab, log_copy = self._parts(hidden, context, context_ids)
        attn = log_attn.exp()
        log_p = logits.float().log_softmax(-1)  # (B, T, V): the normaliser needs every logit
        ids = context_ids.clamp(min=0)
        same = context_ids[:, :, None] == context_ids[:, None, :]  # (B, S, S): positions holding one token
        at = context_ids[:, None, :] == target[..., None]  # (B, T, S): the context positions holding the target
        copy_at_target = (attn * at).sum(-1)  # (B, T)
        at_target = log_vocab[..., 0] + log_p.gather(-1, target[..., None])[..., 0]
        target_lp = torch.logaddexp(at_target, log_copy[..., 0] + _log(copy_at_target))
        with torch.no_grad():  # the argmax: a diagnostic, no gradient
            best_lp, best = log_p.max(-1)
            copy_mass = torch.einsum("bts,bsr->btr", attn, same.float())  # (B, T, S) p_copy at each position's token
            at_context = log_p.gather(-1, ids[:, None].expand(-1, target.shape[1], -1))
            mixed = torch.logaddexp(log_vocab + at_context, log_copy + _log(copy_mass))
            mixed = mixed.masked_fill(context_ids[:, None] < 0, float("-inf"))
            context_lp, where = mixed.max(-1)
            from_context = ids.gather(1, where)
            predicted = torch.where(context_lp > log_vocab[..., 0] + best_lp, from_context, best)
        # -1e9, not -inf, before the sum: a row without the target then has a finite sum and no NaN gradient.
        pointer = log_attn.masked_fill(~at, -1e9).logsumexp(-1).masked_fill(~at.any(-1), float("-inf"))
        return target_lp, predicted, pointer


def _log(p: Tensor) -> Tensor:
    """log p with log 0 = -inf, taken through where() so that no gradient meets 1 / 0."""
    found = p > 0
    return torch.where(found, p, 1.0).log().masked_fill(~found, float("-inf"))
