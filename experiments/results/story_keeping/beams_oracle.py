"""Of the K beam plans per prompt, each decoded: how often the top beam keeps its cast, how often any beam does
(the cast checker choosing: an oracle, not a method), and how often the beam with the shortest lossless code of its
written continuation does (planner + decoder bits of the text re-encoded, total and per idea).

    python experiments/results/story_keeping/beams_oracle.py runs/demo/planner [PROMPTS] [THREADS]
"""

import dataclasses
import json
import sys

import numpy as np
import torch

from hiertok.codelength import idea_bits
from hiertok.data.story_state import CastChecker
from hiertok.data.synthetic import generate_stories
from hiertok.pipeline import Pipeline

K = 4
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
pipe = Pipeline.from_pretrained(sys.argv[1])
tok = pipe.tokenizer
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
stories = generate_stories(n, seed=1)
first_ideas = [[tok.split(s.text)[0]] for s in stories]
first = tok.encode([s.sentences[0] for s in stories]).ids[:, :1, : pipe.levels]
max_ideas = max(len(s.sentences) for s in stories) + 4  # as `hiertok eval planner` plans on the synthetic world
cfg = dataclasses.replace(pipe.cfg.search, num_beams=K, temperature=0.0, diverse_groups=1, max_ideas=max_ideas)
check = CastChecker()
valid = np.zeros((n, K), dtype=bool)
bits = {"total": np.full((n, K), np.inf), "per_idea": np.full((n, K), np.inf)}
for lo in range(0, n, 50):
    found = pipe.plans(first[lo : lo + 50], None, cfg)
    texts = pipe.expand(first[lo : lo + 50], found, prompt_ideas=first_ideas[lo : lo + 50])
    for i, per in enumerate(texts):
        prompt = tok.bpe.decode(first_ideas[lo + i][0])
        scored = idea_bits(pipe, [prompt + "".join(t) for t in per])
        for j, t in enumerate(per):
            valid[lo + i, j] = check.story_valid([prompt, *t])
            a, b = scored.doc_offsets[j] + 1, scored.doc_offsets[j + 1]  # the continuation's ideas
            bits["total"][lo + i, j] = scored.code_bits[a:b].sum() + scored.token_bits[a:b].sum()
            bits["per_idea"][lo + i, j] = bits["total"][lo + i, j] / max(1, b - a)
distinct = np.mean([len(set(np.round(row, 3))) for row in bits["total"]])
result = {"top_beam": valid[:, 0].mean(), "any_beam_oracle": valid.any(1).mean(), "distinct_texts_per_prompt": distinct}
result.update({f"shortest_code_{k}": valid[np.arange(n), v.argmin(1)].mean() for k, v in bits.items()})
print(json.dumps({k: round(float(x), 3) for k, x in result.items()}))
