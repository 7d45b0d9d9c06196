"""Wrong details in training, so that the decoder takes what the story fixed from the story.

A planner gets the gist of the next idea right far more often than its details: level 1 of a plan is followed
almost always, its finer levels far less (plan adherence falls with depth). In the tokenizer's training data the
finer codes and the story context never disagree (the hero named in the context is the hero the codes carry),
so the decoder has no reason to prefer one over the other, and at generation it copies the plan's details (a
new hero, the most common colour) over what the prompt established. Swapping the finer levels of some training
ideas for those of another idea with the same gist makes the disagreement visible: the text still follows the
story, so the decoder learns to read persistent facts from the context and only the rest from the codes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hiertok.quantize import MultiLevelQuantizer


def swap_details(
    quantizer: MultiLevelQuantizer, vectors: Tensor, indices: Tensor, eligible: Tensor, rate: float, first: int = 0
) -> tuple[Tensor, Tensor]:
    """Replace the finer levels of a `rate` fraction of the eligible ideas by another idea's.

    Each chosen idea keeps its levels 1..j-1 and takes levels j..L from a random other
    idea of the batch with the same level-1 code (an idea without such a partner is left alone). Only ideas
    that kept every level (no level dropout) take part, so that the spliced codes are a full plan.

    Args:
        quantizer: the tokenizer's quantizer (to turn the spliced codes into the decoder's vector).
        vectors: (B, D) the ideas' code vectors.
        indices: (B, L) their codes (-1 at dropped levels).
        eligible: (B,) ideas that may be changed (those shown a story context).
        rate: fraction of the eligible ideas to change.
        first: j, the first level taken from the partner (2..L); 0: uniform in 2..L for each idea.

    Returns:
        vectors (B, D) with the changed rows replaced (no gradient through them) and changed (B,) bool.
    """
    b, levels = indices.shape
    changed = torch.zeros(b, dtype=torch.bool, device=indices.device)
    if rate <= 0 or levels < 2 or b < 2:
        return vectors, changed
    full = (indices >= 0).all(1)
    chosen = eligible & full & (torch.rand(b, device=indices.device) < rate)
    # A random partner with the same gist: among the full rows with the same level-1 code, not itself.
    same = (indices[:, None, 0] == indices[None, :, 0]) & full[None, :] & full[:, None]
    same.fill_diagonal_(False)
    chosen &= same.any(1)
    if not chosen.any():
        return vectors, changed
    partner = (torch.rand(b, b, device=indices.device) * same).argmax(1)  # uniform among the True entries
    # the first level taken from the partner, 0-based
    dev = indices.device
    start = torch.randint(1, levels, (b,), device=dev) if not first else torch.full((b,), first - 1, device=dev)
    take = torch.arange(levels, device=indices.device)[None, :] >= start[:, None]
    spliced = torch.where(take, indices[partner], indices)[chosen]
    with torch.no_grad():
        new = quantizer.decode_indices(spliced).to(vectors.dtype)
    changed[chosen] = True
    return vectors.index_put((chosen.nonzero().squeeze(1),), new), changed
