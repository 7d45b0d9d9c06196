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
    quantizer: MultiLevelQuantizer,
    vectors: Tensor,
    indices: Tensor,
    kept: Tensor,
    eligible: Tensor,
    rate: float,
    first: int = 0,
    allowed: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Replace the finer levels of a `rate` fraction of the eligible ideas by another idea's, at their own depth.

    Each chosen idea, cut to its first k levels (level dropout), keeps its levels 1..j-1 and takes levels j..k
    from a random other idea of the batch with the same level-1 code that kept at least k levels (an idea
    without such a partner, or with k = 1, is left alone); levels after k stay absent. A plan of fewer levels
    than the tokenizer has (a planner of 4 levels) is decoded from such a prefix, so the decoder must learn to
    prefer the story over wrong details at every depth, not at full depth only.

    Args:
        quantizer: the tokenizer's quantizer (to turn the spliced codes into the decoder's vector).
        vectors: (B, D) the ideas' code vectors, each already cut to its kept levels.
        indices: (B, L) their codes (levels past `kept` are not read; the residual quantizer marks them -1).
        kept: (B,) levels each idea kept (`QuantizerOutput.kept_levels`).
        eligible: (B,) ideas that may be changed (those shown a story context).
        rate: fraction of the eligible ideas to change.
        first: j, the first level taken from the partner (2..L; an idea with k < j is left alone); 0: j uniform
            in 2..k for each idea.
        allowed: (B, B) partners each idea may take its details from (`copyable_partners`); None: any.

    Returns:
        vectors (B, D) with the changed rows replaced (no gradient through them) and changed (B,) bool.
    """
    b, levels = indices.shape
    dev = indices.device
    changed = torch.zeros(b, dtype=torch.bool, device=dev)
    if rate <= 0 or levels < 2 or b < 2:
        return vectors, changed
    # j, 0-based: the fixed level, or uniform in 1..k-1 (rand * (k-1) floors into 0..k-2)
    if first:
        start = torch.full((b,), first - 1, device=dev)
    else:
        start = 1 + (torch.rand(b, device=dev) * (kept - 1).clamp(min=0)).floor().long()
    chosen = eligible & (kept >= 2) & (start < kept) & (torch.rand(b, device=dev) < rate)
    # A random partner with the same gist and at least as many levels, not itself.
    same = (indices[:, None, 0] == indices[None, :, 0]) & (kept[None, :] >= kept[:, None])
    same.fill_diagonal_(False)
    if allowed is not None:
        same &= allowed
    chosen &= same.any(1)
    if not chosen.any():
        return vectors, changed
    partner = (torch.rand(b, b, device=dev) * same).argmax(1)  # uniform among the True entries
    take = torch.arange(levels, device=dev)[None, :] >= start[:, None]
    spliced = torch.where(take, indices[partner], indices)
    out = vectors.detach().clone()
    with torch.no_grad():
        for k in kept[chosen].unique().tolist():  # one call per depth: decode_indices reads a (rows, k) prefix
            rows = (chosen & (kept == k)).nonzero().squeeze(1)
            out[rows] = quantizer.decode_indices(spliced[rows, :k]).to(vectors.dtype)
    changed[chosen] = True
    return torch.where(changed[:, None], out, vectors), changed


def copyable_partners(targets: Tensor, tmask: Tensor, context: Tensor, cmask: Tensor) -> Tensor:
    """Which ideas' details a target may be given so that the story can correct every one of them.

    Partner j is allowed for target i when every token of i that j lacks is in the story i is shown, and the
    two differ: decoding i from j's details, the decoder can write i's text by copying from the context, so
    the noise teaches it to trust the story, never to guess a detail nobody told it. Compared as bags of
    tokens, without templates, so that the rule holds for any corpus.

    Args:
        targets: (B, T) the targets' token ids; tmask: (B, T) their real tokens.
        context: (B, C, T') token ids of the earlier ideas each target is shown by text; cmask: (B, C, T') their
            real tokens (all False for an idea not shown).

    Returns:
        (B, B) bool, [i, j] True where target j may give target i its details.
    """
    vocab = int(max(targets.max(), context.max() if context.numel() else 0)) + 1
    own = _bag(targets, tmask, vocab)  # (B, V)
    told = _bag(context.flatten(1), cmask.flatten(1), vocab)  # (B, V): every token the story shows
    missing = (own & ~told).float()  # tokens of i the story does not show
    lacks = (~own).float()
    untold = missing @ lacks.T  # [i, j]: tokens of i neither in j nor in i's story
    differ = (own.float() @ lacks.T) + (lacks @ own.float().T) > 0
    return (untold == 0) & differ


def _bag(tokens: Tensor, mask: Tensor, vocab: int) -> Tensor:
    """(R, V) True at the token ids each row holds at its real positions."""
    counts = torch.zeros(tokens.shape[0], vocab, device=tokens.device)
    return counts.scatter_add_(1, tokens.clamp(min=0), mask.float()) > 0
