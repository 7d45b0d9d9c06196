"""Analysis by synthesis for video frames, a probe: decode each held-out frame from its codes (`decode_frames`); where
the decoded frame does not encode back to those codes, try the frames that differ from it in its m least sure pixels
(each either as decoded or at its second most likely colour: 2^m candidates, most likely first) and keep the first
that encodes back to the codes. A receiver holds the codes and the encoder, so this is a decoder, not a peek at the
truth. Prints exact frames before and after, and how often the search found a frame, and a wrong one.

    python experiments/results/video/reencode_search.py RUN [VIDEOS] [M]
"""

import itertools
import sys

import numpy as np
import torch

from hiertok.data.corpus import heldout_videos
from hiertok.data.pixels import SPECIALS
from hiertok.tokenizer import IdeaTokenizer

tok = IdeaTokenizer.from_pretrained(sys.argv[1])
videos = heldout_videos(tok.cfg.data)[: int(sys.argv[2]) if len(sys.argv) > 2 else 50]
m = int(sys.argv[3]) if len(sys.argv) > 3 else 8
codes = tok.encode_frames(videos)
decoded = tok.decode_frames(codes)
b, t, h, w = videos.shape
ids = codes.ids.reshape(b * t, -1)
flat_decoded, truth = decoded.reshape(b * t, h * w), videos.reshape(b * t, h * w)
caught = (tok.encode_frames(decoded).ids.reshape(b * t, -1) != ids).any(-1).numpy()

model, colours = tok.model.eval(), tok.bpe.colours
with torch.no_grad():  # each pixel's colour log-probabilities, as decode_frames' one forward pass gives them
    cond = model.decoder.condition(model.quantizer.decode_indices(ids[caught]))
    inp = torch.full((len(cond), h * w + 1), tok.bpe.pad_id, dtype=torch.long)
    inp[:, 0] = tok.bpe.bos_id
    logp = model.decoder(inp, cond)[0][:, : h * w, SPECIALS : SPECIALS + colours].float().log_softmax(-1).numpy()

found = wrong_found = 0
fixed = flat_decoded.copy()
subsets = np.array(list(itertools.product([0, 1], repeat=m)), dtype=bool)  # (2^m, m)
for row, n in enumerate(np.flatnonzero(caught)):
    top2 = np.argsort(-logp[row], axis=-1)[:, :2]  # (P, 2) best and second colour of each pixel
    gap = logp[row][np.arange(h * w), top2[:, 0]] - logp[row][np.arange(h * w), top2[:, 1]]
    unsure = np.argsort(gap)[:m]  # the m pixels whose second colour is nearest the first
    order = np.argsort((subsets * gap[unsure]).sum(1), kind="stable")  # candidates, most likely first
    candidates = np.repeat(flat_decoded[n][None], len(subsets), 0)
    for j, pixel in enumerate(unsure):
        candidates[subsets[:, j], pixel] = top2[pixel, 1]
    candidates = candidates[order]
    again = tok.encode_frames(candidates.reshape(-1, 1, h, w).astype(np.uint8)).ids.reshape(len(candidates), -1)
    match = np.flatnonzero((again == ids[n]).all(-1).numpy())
    if len(match):
        fixed[n] = candidates[match[0]]
        found += 1
        wrong_found += not np.array_equal(fixed[n], truth[n])
before = (flat_decoded == truth).all(-1).mean()
after = (fixed == truth).all(-1).mean()
print(f"{b * t} frames, m = {m}: exact {before:.3f} -> {after:.3f}; {caught.sum()} caught by re-encoding, a frame that")
print(f"encodes back found for {found} ({wrong_found} of them not the true frame)")
