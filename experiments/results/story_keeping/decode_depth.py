"""Held-out synthetic stories decoded from their true codes cut to k levels, the first sentence known as text
(each later idea reading the decoded text before it): the fraction that keep their cast, and the first breaks.

    python experiments/results/story_keeping/decode_depth.py runs/demo/tokenizer [STORIES]
"""

import sys

import torch

from hiertok.data.story_state import CastChecker
from hiertok.data.synthetic import generate_stories
from hiertok.tokenizer import IdeaTokenizer

torch.set_num_threads(2)
tok = IdeaTokenizer.from_pretrained(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
docs = [s.text for s in generate_stories(n, seed=1)]  # the held-out seed of a world trained on seed 0
codes = tok.encode(docs)
first = [[tok.split(d)[0]] for d in docs]
check = CastChecker()
for k in [1, 2, 4, 8, 16]:
    out = tok.decode_ideas(codes, levels=k, known=first, passes=0)
    valid = sum(check.story_valid(doc) for doc in out) / n
    print(f"k={k:2d} story_valid {valid:.2f} breaks {check.count_breaks(out)}", flush=True)
