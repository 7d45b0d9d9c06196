"""Idea encoder: an x-transformers encoder over one idea's tokens, pooled to one idea vector.

Mean pooling by default: prototypes showed one pooled vector feeding one decoder prefix learns (x-transformers'
own attention pool leaves `to_logits` unused, which breaks DDP). `pool: attention` pools with a learned query
instead (torch's MultiheadAttention, every parameter used), for ideas whose content is a few tokens among many.
`pool: flatten` reads every position's state through its own weights (one linear map of the concatenated states),
for ideas of a fixed layout such as a frame's pixels; tried on frames, it did not beat the mean (experiments/README.md:
"A flattening pool").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import Tensor, nn
from x_transformers import TransformerWrapper

from hiertok.errors import UserError
from hiertok.layers import rotary_layers, start_raster
from hiertok.patches import PatchEmbed, check_patch, first_of_patches, patch_mask, patched_length


@dataclass
class EncoderConfig:
    """Size of the idea encoder."""

    dim: int = 128
    depth: int = 2
    heads: int = 4
    dim_head: int = 64  # width of one attention head (dim / heads keeps the attention as wide as the model)
    dropout: float = 0.0
    # Learned absolute positions beside the rotary ones: where a pixel frame's squares are is absolute, and
    # rotary attention sees only distances between tokens; text needs no such thing.
    abs_positions: bool = False
    # With abs_positions: start the learned positions as 2D sinusoids of a row-major raster this wide (a frame's width,
    # hiertok.layers.raster_positions), so that pixels near each other start alike. 0: random vectors.
    raster_width: int = 0
    # How token states become one vector: "mean", "attention" (a learned query attends over the tokens, as a
    # Set Transformer's pooling does), or "flatten" (the states of all max_len positions, padding as zeros,
    # concatenated and mapped by one linear layer): a frame's few square pixels vanish in a mean over its 256 pixels.
    pool: str = "mean"
    # Tokens merged into one position before the stack (hiertok/patches.py, as MegaByte's patches): a frame's 256
    # pixels attend as 64 strips of 4, P^2 times cheaper attention. 1: a position a token.
    patch: int = 1


POOLS = ("mean", "attention", "flatten")


class IdeaEncoder(nn.Module):
    """Tokens of a batch of ideas -> one vector per idea."""

    def __init__(self, cfg: EncoderConfig, vocab_size: int, max_len: int, idea_dim: int):
        """
        Args:
            cfg: encoder size.
            vocab_size: BPE vocabulary size.
            max_len: longest idea in tokens (rotary positions: only a bound for the wrapper; with `abs_positions`,
                the number of learned positions).
            idea_dim: width D of the idea vector the quantizer receives.
        """
        super().__init__()
        check_patch(cfg.patch, "model.encoder")
        if cfg.raster_width % cfg.patch:
            raise UserError(
                f"model.encoder.raster_width ({cfg.raster_width}) must be a multiple of patch ({cfg.patch})"
            )
        self.net = TransformerWrapper(
            num_tokens=vocab_size,
            max_seq_len=patched_length(max_len, cfg.patch),
            use_abs_pos_emb=cfg.abs_positions,
            return_only_embed=True,
            emb_dropout=cfg.dropout,
            attn_layers=rotary_layers(
                causal=False,
                dim=cfg.dim,
                depth=cfg.depth,
                heads=cfg.heads,
                dropout=cfg.dropout,
                dim_head=cfg.dim_head,
                abs_positions=cfg.abs_positions,
            ),
        )
        # LayerNorm keeps the idea vector in the quantizers' working range: unnormalised outputs drift into
        # FSQ's saturated tanh, where codes stick to the codebook corners and gradients vanish.
        self.to_idea = nn.Sequential(nn.Linear(cfg.dim, idea_dim), nn.LayerNorm(idea_dim))
        # A patch of a raster's row is a pixel of a raster P times narrower.
        start_raster(self.net, cfg.abs_positions, cfg.raster_width // cfg.patch, "model.encoder")
        self.to_patches = PatchEmbed(cfg.dim, cfg.patch) if cfg.patch > 1 else None
        if cfg.pool not in POOLS:
            raise UserError(f"model.encoder.pool must be one of {POOLS}, got {cfg.pool!r}")
        self.pool_query = self.pool_attention = self.pool_flat = None
        self.max_len = patched_length(max_len, cfg.patch)  # positions of the stack
        if cfg.pool == "flatten":
            self.pool_flat = nn.Linear(self.max_len * cfg.dim, cfg.dim)
        if cfg.pool == "attention":
            self.pool_query = nn.Parameter(torch.randn(1, 1, cfg.dim) * 0.02)
            self.pool_attention = nn.MultiheadAttention(cfg.dim, cfg.heads, batch_first=True)

    @property
    def token_embedding(self) -> nn.Embedding:
        """The input embedding table (V, W), e.g. to embed soft token distributions."""
        return self.net.token_emb.emb

    def forward(self, tokens: Tensor, mask: Tensor, soft_embeddings: Tensor | None = None) -> Tensor:
        """Encode ideas.

        Args:
            tokens: (B, T) token ids, right-padded.
            mask: (B, T) True at real tokens; every row has at least one.
            soft_embeddings: optional (B, T, W) input embeddings used instead of the tokens' (e.g. token
                probabilities times `token_embedding.weight`, to re-encode a decoder's soft output).

        Returns:
            (B, D) idea vectors.
        """
        dtype = self.token_embedding.weight.dtype
        replace = None if soft_embeddings is None else (lambda _: soft_embeddings.to(dtype))
        if self.to_patches is not None:  # the wrapper runs on each patch's first id, its embeddings replaced
            embeds = self.net.token_emb(tokens) if soft_embeddings is None else soft_embeddings.to(dtype)
            patches, size = self.to_patches(embeds, mask), self.to_patches.patch
            tokens, mask = first_of_patches(tokens, size), patch_mask(mask, size)
            replace = lambda _: patches  # noqa: E731
        hidden = self.net(tokens, mask=mask, transform_token_embeds=replace)  # (B, T, W), T in patches with `patch`
        if self.pool_attention is not None:
            query = self.pool_query.expand(hidden.shape[0], -1, -1).to(hidden.dtype)
            pooled, _ = self.pool_attention(query, hidden, hidden, key_padding_mask=~mask, need_weights=False)
            return self.to_idea(pooled[:, 0])
        if self.pool_flat is not None:
            if hidden.shape[1] > self.max_len:
                raise UserError(f"an idea of {hidden.shape[1]} positions is longer than this encoder's {self.max_len}")
            states = F.pad(hidden.masked_fill(~mask[..., None], 0.0), (0, 0, 0, self.max_len - hidden.shape[1]))
            return self.to_idea(self.pool_flat(rearrange(states, "b t w -> b (t w)")))
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = reduce(hidden * m, "b t w -> b w", "sum") / reduce(m, "b t 1 -> b 1", "sum").clamp(min=1)
        return self.to_idea(pooled)
