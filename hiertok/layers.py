"""The attention stack every model here uses: x-transformers layers with rotary positions and SDPA attention."""

from __future__ import annotations

from x_transformers import Decoder, Encoder

from hiertok.errors import UserError


def rotary_layers(
    causal: bool,
    dim: int,
    depth: int,
    heads: int,
    dropout: float = 0.0,
    cross_attend: bool = False,
    dim_head: int = 64,
) -> Decoder | Encoder:
    """A causal (Decoder) or bidirectional (Encoder) stack with rotary positions and flash (SDPA) attention,
    and with `cross_attend` a cross-attention block per layer (called with `context=`, `context_mask=`).

    Rotary positions keep the KV cache valid past max_seq_len; attn_flash runs on CPU too. `dim_head` is the
    width of one head (x-transformers' default, 64; heads x dim_head is the attention's inner width).
    """
    if dim_head < 1:
        raise UserError(f"dim_head (the width of one attention head) must be >= 1, got {dim_head}")
    layers = Decoder if causal else Encoder
    return layers(
        dim=dim,
        depth=depth,
        heads=heads,
        rotary_pos_emb=True,
        attn_flash=True,
        attn_dropout=dropout,
        ff_dropout=dropout,
        cross_attend=cross_attend,
        attn_dim_head=dim_head,
        # Rotary turns half of each head (the library's default), 16 dims at dim_head 32; the library warns below
        # 32, which matters for long language-model contexts, not for ideas of tens of tokens.
        verbose=False,
    )
