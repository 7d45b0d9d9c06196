"""Conditioned token decoder: an autoregressive x-transformers decoder that reads an idea's code vector
(and optionally its neighbours') as prefix embeddings and writes the idea's tokens.

A prefix embedding, not cross-attention: prototypes showed a cross-attended code is easy to bypass,
while one prefix embedding that every position attends to is read.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from x_transformers import TransformerWrapper
from x_transformers.x_transformers import LayerIntermediates

from hiertok.layers import rotary_layers


@dataclass
class DecoderConfig:
    """Size and conditioning of the token decoder."""

    dim: int = 128
    depth: int = 2
    heads: int = 4
    dropout: float = 0.0
    neighbor_window: int = 0  # also condition on the codes of this many previous and next ideas
    max_len: int = 128  # longest idea in tokens (+ BOS/EOS); rotary positions extend past it


@dataclass
class SpecialIds:
    """Token ids the decoder treats specially."""

    pad: int
    bos: int
    eos: int


class IdeaDecoder(nn.Module):
    """Code vectors -> prefix embeddings -> autoregressive token logits."""

    def __init__(self, cfg: DecoderConfig, vocab_size: int, cond_dim: int, special: SpecialIds):
        """
        Args:
            cfg: decoder size and conditioning.
            vocab_size: BPE vocabulary size V.
            cond_dim: width D of the code vector of one idea.
            special: pad / bos / eos ids.
        """
        super().__init__()
        self.cfg = cfg
        self.special = special
        self.num_prefix = 1 + 2 * cfg.neighbor_window
        self.net = TransformerWrapper(
            num_tokens=vocab_size,
            max_seq_len=cfg.max_len + self.num_prefix,
            use_abs_pos_emb=False,
            emb_dropout=cfg.dropout,
            attn_layers=rotary_layers(causal=True, dim=cfg.dim, depth=cfg.depth, heads=cfg.heads, dropout=cfg.dropout),
        )
        self.to_prefix = nn.Linear(cond_dim, cfg.dim)
        # Which slot a prefix embedding fills (self, previous 1..w, next 1..w), and "no neighbour here".
        self.slot = nn.Parameter(torch.zeros(self.num_prefix, cfg.dim))
        self.missing = nn.Parameter(torch.zeros(cfg.dim))

    def prefix(self, codes: Tensor, present: Tensor | None = None) -> Tensor:
        """Prefix embeddings from code vectors.

        Args:
            codes: (B, P, D) code vectors for [self, prev_1..prev_w, next_1..next_w], P = 1 + 2w.
            present: (B, P) False where a neighbour does not exist (document boundary).

        Returns:
            (B, P, W) prefix embeddings.
        """
        if codes.shape[1] != self.num_prefix:
            raise ValueError(f"decoder expects {self.num_prefix} code vectors per idea, got {codes.shape[1]}")
        emb = self.to_prefix(codes)
        if present is not None:
            emb = torch.where(present.unsqueeze(-1), emb, self.missing.to(emb.dtype))
        return emb + self.slot.to(emb.dtype)

    def forward(
        self, tokens: Tensor, prefix: Tensor, cache: LayerIntermediates | None = None
    ) -> tuple[Tensor, LayerIntermediates]:
        """Next-token logits.

        Args:
            tokens: (B, T) decoder input ids starting with BOS.
            prefix: (B, P, W) prefix embeddings from `prefix()`.
            cache: the KV cache of a previous call on tokens[:, :-1] (then only the last position is new).

        Returns:
            logits (B, T, V) without cache, (B, 1, V) with it; and the new cache.
        """
        logits, inter = self.net(tokens, prepend_embeds=prefix, cache=cache, return_intermediates=True)
        if cache is None:
            logits = logits[:, prefix.shape[1] :]
        return logits, inter

    def nll(self, tokens: Tensor, mask: Tensor, prefix: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forced negative log-likelihood (nats) of each idea's tokens followed by EOS.

        Args:
            tokens: (B, T) idea token ids, right-padded with `pad`.
            mask: (B, T) True at real tokens.
            prefix: (B, P, W) prefix embeddings.

        Returns:
            per-position nll (B, T+1) (0 at padding) and the target mask (B, T+1).
        """
        inp, target, tmask = self.teacher_forcing(tokens, mask)
        logits, _ = self(inp, prefix)
        nll = F.cross_entropy(rearrange(logits.float(), "b t v -> b v t"), target, reduction="none")
        return nll * tmask, tmask

    def teacher_forcing(self, tokens: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Decoder inputs [BOS, x...], targets [x..., EOS] and their mask, all (B, T+1)."""
        b = tokens.shape[0]
        lengths = mask.sum(-1)
        bos = tokens.new_full((b, 1), self.special.bos)
        inp = torch.cat([bos, tokens.masked_fill(~mask, self.special.pad)], dim=1)
        target = torch.cat([tokens.masked_fill(~mask, self.special.pad), tokens.new_full((b, 1), self.special.pad)], 1)
        target = target.scatter(1, lengths.unsqueeze(1), self.special.eos)
        tmask = torch.arange(target.shape[1], device=tokens.device)[None, :] <= lengths[:, None]
        return inp, target, tmask
