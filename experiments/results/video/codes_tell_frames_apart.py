"""Do a video tokenizer's codes carry its frames? Held-out frames scored teacher-forced from their own codes and
from another frame's codes of the same video, and the number of distinct codes.

    python experiments/results/video/codes_tell_frames_apart.py RUN [VIDEOS]
"""

import sys

import torch

from hiertok.codes import Codes
from hiertok.data.corpus import heldout_videos
from hiertok.data.pixels import video_corpus
from hiertok.evaluate import teacher_forced
from hiertok.tokenizer import IdeaTokenizer

tok = IdeaTokenizer.from_pretrained(sys.argv[1])
videos = heldout_videos(tok.cfg.data)[: int(sys.argv[2]) if len(sys.argv) > 2 else 10]
codes = tok.encode_frames(videos)
flat = codes.ids.reshape(-1, tok.levels).tolist()
level1, full = len({c[0] for c in flat}), len({tuple(c) for c in flat})
print(f"{len(flat)} frames: {level1} distinct level-1 codes, {full} distinct at full depth")
corpus = video_corpus(videos, tok.bpe)
other = Codes(codes.ids[:, torch.roll(torch.arange(codes.ids.shape[1]), 7)], codes.mask, codes.codebook_sizes)
for name, c in (("own codes", codes), ("another frame's codes", other)):
    nats, accuracy = teacher_forced(tok, corpus, c)
    print(f"{name}: {nats:.0f} nats, token accuracy {accuracy:.4f}")
