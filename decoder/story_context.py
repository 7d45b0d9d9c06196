"""The story context a decoder cross-attends to: the earlier ideas of a story, each shown by its tokens (its text
is known), by its code vector (only its codes are), or not at all, packed into one sequence per row."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from einops import rearrange
from torch import Tensor, nn

from hiertok.layers import rotary_layers

if TYPE_CHECKING:
    from decoder.model import DecoderConfig

# How a context slot shows an earlier idea.
ABSENT, TEXT, CODES = 0, 1, 2


class StoryContext(nn.Module):
    """Embeds each row's earlier ideas into one cross-attention sequence: tokens of ideas shown by text, one
    vector per idea shown by codes, each tagged with its kind, its distance back and its token position."""

    def __init__(self, cfg: DecoderConfig, cond_dim: int):
        super().__init__()
        self.to_codes = nn.Linear(cond_dim, cfg.dim) if cfg.context_codes else None
        self.distance = nn.Parameter(torch.zeros(cfg.context, cfg.dim))
        self.position = nn.Parameter(torch.zeros(cfg.max_len + 1, cfg.dim))
        self.kind = nn.Parameter(torch.zeros(2, cfg.dim))  # TEXT, CODES
        nn.init.normal_(self.distance, std=0.02)
        nn.init.normal_(self.position, std=0.02)
        nn.init.normal_(self.kind, std=0.02)
        self.encoder = None
        if cfg.context_layers:  # bidirectional over each row's packed context: the receiver has all of it
            self.encoder = rotary_layers(
                causal=False, dim=cfg.dim, depth=cfg.context_layers, heads=cfg.heads, dim_head=cfg.dim_head
            )

    def forward(
        self, kinds: Tensor, tokens: Tensor, mask: Tensor, codes: Tensor | None, token_emb: nn.Module
    ) -> tuple[Tensor, Tensor]:
        """The context sequence of a batch.

        Args:
            kinds: (B, C) ABSENT / TEXT / CODES per earlier idea, nearest first.
            tokens: (B, C, T) token ids of the earlier ideas (read where TEXT).
            mask: (B, C, T) True at their real tokens.
            codes: (B, C, D) their code vectors (read where CODES), or None.
            token_emb: the decoder's own token embedding (a copied name is the same vector); passed, not held,
                so that the shared table is saved once.

        Returns:
            context (B, S, W), its mask (B, S) and token ids (B, S; -1 at code vectors and padding): the shown
            tokens and code vectors of each row, packed.
        """
        c, t = tokens.shape[1:]
        text_mask = rearrange(mask & (kinds == TEXT)[..., None], "b c t -> b (c t)")
        # Pack before embedding: each earlier idea is padded to the longest, and neither the embedding nor
        # cross-attention need pay for that padding.
        order, text_mask = _packed_order(text_mask)
        ids = rearrange(tokens, "b c t -> b (c t)").gather(1, order).masked_fill(~text_mask, -1)
        slot = torch.arange(c * t, device=tokens.device)
        at = (slot % t).clamp(max=len(self.position) - 1)[order]  # longer ideas share the last position
        text = token_emb(ids.clamp(min=0)) + self.position[at] + self.distance[(slot // t)[order]] + self.kind[0]
        if self.to_codes is None or codes is None:
            return self._encode(text, text_mask), text_mask, ids
        shown = self.to_codes(codes) + self.distance[:c] + self.kind[1]
        seq, seq_mask = torch.cat([text, shown], dim=1), torch.cat([text_mask, kinds == CODES], dim=1)
        order, seq_mask = _packed_order(seq_mask)
        ids = torch.cat([ids, torch.full_like(kinds, -1)], dim=1).gather(1, order)
        return self._encode(seq.gather(1, order[..., None].expand(-1, -1, seq.shape[-1])), seq_mask), seq_mask, ids

    def _encode(self, seq: Tensor, mask: Tensor) -> Tensor:
        """(B, S, W) packed context -> the same, each position having read the row's others (`context_layers`)."""
        if self.encoder is None:
            return seq
        return self.encoder(seq, mask=mask).masked_fill(~mask[..., None], 0.0)  # a row with no context stays finite


def _packed_order(mask: Tensor) -> tuple[Tensor, Tensor]:
    """The positions (B, S') that move each row's real positions to its front (in order), S' the longest row's
    count, and the packed mask (B, S')."""
    order = torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices
    order = order[:, : max(1, int(mask.sum(1).max()))]
    return order, mask.gather(1, order)
