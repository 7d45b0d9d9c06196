"""Where greedy decoding of frames fails: the decoder's teacher-forced probability of the true colour at each held-out
frame's first non-background pixel (raster order), against the other pixels.

    python experiments/results/video/first_pixel.py RUN [VIDEOS]
"""

import sys

import numpy as np
import torch

from hiertok import story_decoding
from hiertok.data.corpus import heldout_videos
from hiertok.data.pixels import SPECIALS
from hiertok.tokenizer import IdeaTokenizer

tok = IdeaTokenizer.from_pretrained(sys.argv[1])
videos = heldout_videos(tok.cfg.data)[: int(sys.argv[2]) if len(sys.argv) > 2 else 5]
codes = tok.encode_frames(videos)
ids = tok.bpe.encode(videos).reshape(-1, tok.bpe.frame_tokens)
texts = [[int(t) for t in row] for row in ids]
vectors = tok.model.quantizer.decode_indices(codes.ids[codes.mask])
context = story_decoding.grid_previous(codes.mask, tok.model.decoder.cfg.context)
story = story_decoding.StoryTexts(vectors, context, texts, torch.ones(len(texts), dtype=torch.bool))
tokens, mask, has_text = story.batch(tok.bpe.pad_id, tok.device)
with torch.no_grad():
    cond = tok.model.decoder_condition(
        torch.arange(len(texts)), context, vectors, tokens, mask, has_text[context.clamp(min=0)]
    )
    frames = torch.as_tensor(ids, dtype=torch.long)
    inp, target, _ = tok.model.decoder.teacher_forcing(frames, torch.ones_like(frames, dtype=torch.bool))
    p = tok.model.decoder.score(inp, cond, target).log_prob.exp()[:, : tok.bpe.frame_tokens]
background = torch.as_tensor(ids == SPECIALS)
first = np.array(
    [float(p[n, np.flatnonzero(~background[n].numpy())[0]]) for n in range(len(ids)) if (~background[n]).any()]
)
print(
    f"first non-background pixel: median P(true colour) {np.median(first):.3f}, above 0.5 in {np.mean(first > 0.5):.3f}"
)
print(f"every non-background pixel: median {p[~background].median():.3f}; background: {p[background].median():.3f}")
