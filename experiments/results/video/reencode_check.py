"""Would checking a decoded frame by encoding it again find the tokenizer's wrong frames? Held-out frames decoded from
their codes; a frame decoded wrong is "caught" when its own codes differ from the codes it was decoded from (then a
decoder could search on, as analysis by synthesis does), "silent" when they are the same. A frame decoded right
always re-encodes to its codes, since the encoder is deterministic.

    python experiments/results/video/reencode_check.py RUN [VIDEOS]
"""

import sys

from hiertok.data.corpus import heldout_videos
from hiertok.tokenizer import IdeaTokenizer

tok = IdeaTokenizer.from_pretrained(sys.argv[1])
videos = heldout_videos(tok.cfg.data)[: int(sys.argv[2]) if len(sys.argv) > 2 else 50]
codes = tok.encode_frames(videos)
decoded = tok.decode_frames(codes)
wrong = ~(decoded == videos).all((-2, -1))  # (B, T)
again = tok.encode_frames(decoded).ids
caught = (again != codes.ids).any(-1).numpy() & wrong
pixels = (decoded != videos).sum((-2, -1))[wrong]
n = wrong.size
print(f"{n} held-out frames: {wrong.sum()} decoded wrong ({wrong.mean():.3f}); of those, {caught.sum()} caught by")
print(f"re-encoding ({caught.sum() / max(1, wrong.sum()):.3f}), {wrong.sum() - caught.sum()} silent")
if wrong.any():
    print(f"wrong pixels in a wrong frame: mean {pixels.mean():.2f}, max {pixels.max()}")
