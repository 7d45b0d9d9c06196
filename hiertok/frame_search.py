"""Analysis by synthesis for frames: a decoded frame is checked by encoding it again, and searched for where it fails.

A parallel decoder writes every pixel of a frame at once, each its own argmax, and a frame it gets wrong is most
often wrong in one or two pixels whose colour it was unsure of. The receiver of a frame's codes also holds the
encoder, so it can check a decoded frame: encode it, and compare with the codes it was decoded from (nearly every
wrong frame fails that check, and a right frame always passes it). Where the check fails, the frames that differ
from the decoded one in its m least sure pixels (each as decoded or at its second most likely colour) are encoded
in one batch, most likely first, and the first that encodes back to the codes is kept; where none does, the
decoded frame stays. Nothing here reads the true frame, so this is a decoder, and it is lossless-safe.

The candidates are written here rather than asked of the decoder because the search is over the joint choice of a
few pixels, which a per-pixel argmax or sampler does not offer.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np
import torch

from hiertok.data.pixels import SPECIALS

if TYPE_CHECKING:
    from hiertok.tokenizer import IdeaTokenizer


def search_frames(tok: IdeaTokenizer, codes: torch.Tensor, frames: np.ndarray, pixels: int) -> np.ndarray:
    """Decoded frames, each replaced by the most likely near frame that encodes back to its codes where it did not.

    Args:
        tok: a video tokenizer with a parallel decoder.
        codes: (N, k) the codes each frame was decoded from (its first k levels).
        frames: (N, H, W) the frames decoded from them.
        pixels: m, the least sure pixels a search may change (2^m candidates a frame).

    Returns:
        (N, H, W) uint8 frames.
    """
    n, h, w = frames.shape
    k = codes.shape[1]
    if not n or pixels < 1:
        return frames
    again = tok.encode_frames(frames[:, None]).ids[:, 0, :k]
    failed = np.flatnonzero((again != codes).any(-1).numpy())
    if not len(failed):
        return frames
    logp = _pixel_log_probs(tok, codes[failed])  # (F, P, colours)
    m = min(pixels, h * w)
    subsets = np.array(list(itertools.product([False, True], repeat=m)))  # (2^m, m): which pixels take colour 2
    out = frames.copy()
    for row, i in enumerate(failed):
        top2 = np.argsort(-logp[row], axis=-1, kind="stable")[:, :2]  # (P, 2)
        pixel = np.arange(h * w)
        gap = logp[row][pixel, top2[:, 0]] - logp[row][pixel, top2[:, 1]]
        unsure = np.argsort(gap, kind="stable")[:m]
        order = np.argsort((subsets * gap[unsure]).sum(1), kind="stable")  # the most likely candidates first
        candidates = np.repeat(frames[i].reshape(1, -1), len(subsets), 0)
        for j, p in enumerate(unsure):
            candidates[subsets[:, j], p] = top2[p, 1]
        candidates = candidates[order].reshape(-1, 1, h, w)
        encoded = tok.encode_frames(candidates).ids[:, 0, :k]
        match = np.flatnonzero((encoded == codes[i]).all(-1).numpy())
        if len(match):
            out[i] = candidates[match[0], 0]
    return out


def _pixel_log_probs(tok: IdeaTokenizer, codes: torch.Tensor) -> np.ndarray:
    """(F, k) codes -> (F, H * W, colours) each pixel's colour log-probabilities, from the parallel decoder's one
    forward pass (the special tokens left out)."""
    model, vocab = tok.model.eval(), tok.bpe
    pixels = vocab.frame_tokens
    with torch.no_grad():
        cond = model.decoder.condition(model.quantizer.decode_indices(codes.to(tok.device)))
        inp = torch.full((len(codes), pixels + 1), vocab.pad_id, dtype=torch.long, device=tok.device)
        inp[:, 0] = vocab.bos_id
        logits, _ = model.decoder(inp, cond)
    return logits[:, :pixels, SPECIALS : SPECIALS + vocab.colours].float().log_softmax(-1).cpu().numpy()
