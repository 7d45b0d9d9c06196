"""Patches: P neighbouring tokens as one position of a transformer, as MegaByte groups bytes into patches.

A frame's 256 pixel tokens make attention over 256 positions in the encoder and the decoder, most of them
background; merged in strips of P, the stacks attend over 256 / P positions (attention P^2 times cheaper, the
rest P times) while the ideas stay tokens of the same vocabulary: what is encoded, decoded and coded losslessly is
unchanged. x-transformers' wrapper embeds one id per position, so the merge is done here, on its token embeddings.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hiertok.errors import UserError


def check_patch(patch: int, where: str) -> None:
    """UserError (one line) for a patch size below 1; `where` names the config key."""
    if patch < 1:
        raise UserError(f"{where}.patch must be >= 1 (tokens a position), got {patch}")


def patched_length(length: int, patch: int) -> int:
    """Positions that `length` tokens take in patches of `patch` (the last one padded)."""
    return math.ceil(length / patch)


def _padding(length: int, patch: int) -> int:
    """Positions that pad `length` tokens to whole patches."""
    return patched_length(length, patch) * patch - length


def first_of_patches(ids: Tensor, patch: int) -> Tensor:
    """(B, T) token ids -> (B, ceil(T / P)): each patch's first id (what the wrapper is called with; its
    embeddings are then replaced by the patches')."""
    return ids[:, ::patch]


def patch_mask(mask: Tensor, patch: int) -> Tensor:
    """(B, T) real tokens -> (B, ceil(T / P)) patches with at least one real token."""
    padded = F.pad(mask, (0, _padding(mask.shape[1], patch)), value=False)
    return rearrange(padded, "b (n p) -> b n p", p=patch).any(-1)


class PatchEmbed(nn.Module):
    """Token embeddings (B, T, W) -> patch embeddings (B, ceil(T / P), W): the P embeddings of a patch side by side,
    mapped by one linear layer (which pixel of a strip holds which colour is in the patch's vector)."""

    def __init__(self, dim: int, patch: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Linear(patch * dim, dim)

    def forward(self, embeds: Tensor, mask: Tensor) -> Tensor:
        """
        Args:
            embeds: (B, T, W) token embeddings.
            mask: (B, T) True at real tokens (the others count as zeros).

        Returns:
            (B, ceil(T / P), W) patch embeddings.
        """
        pad = _padding(embeds.shape[1], self.patch)
        embeds = F.pad(embeds.masked_fill(~mask[..., None], 0.0), (0, 0, 0, pad))
        return self.proj(rearrange(embeds, "b (n p) w -> b n (p w)", p=self.patch))


class Unpatch(nn.Module):
    """Patch states (B, N, W) -> token states (B, N * P, W): one linear layer gives each of a patch's P tokens its own
    state, which the wrapper's logits head then reads as it reads a token's."""

    def __init__(self, dim: int, patch: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Linear(dim, patch * dim)

    def forward(self, states: Tensor) -> Tensor:
        """(B, N, W) -> (B, N * P, W)."""
        return rearrange(self.proj(states), "b n (p w) -> b (n p) w", p=self.patch)
