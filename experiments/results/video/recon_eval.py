"""Held-out reconstruction of a video tokenizer run: exact frames and pixel accuracy by levels kept.

python experiments/results/video/recon_eval.py RUN [VIDEOS]
"""

import sys

from hiertok.data.corpus import heldout_videos
from hiertok.tokenizer import IdeaTokenizer

tok = IdeaTokenizer.from_pretrained(sys.argv[1])
videos = heldout_videos(tok.cfg.data)[: int(sys.argv[2]) if len(sys.argv) > 2 else 5]
codes = tok.encode_frames(videos)
frames_count = videos.shape[0] * videos.shape[1]
for k in sorted({1, 2, 4, tok.levels}):
    same = tok.decode_frames(codes, levels=k) == videos
    exact = same.all(axis=(2, 3)).mean()
    print(f"k={k}: exact frames {exact:.3f}, pixel accuracy {same.mean():.4f} ({frames_count} frames)")
