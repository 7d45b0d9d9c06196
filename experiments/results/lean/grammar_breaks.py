"""The held-out prompts whose generated story breaks the world's grammar, as `hiertok eval planner` generates them
(100 prompts, beam 4): each planned sentence with its level-1 code and the event the world's templates parse it as.

    python experiments/results/lean/grammar_breaks.py runs/lean/s2/plan
"""

import dataclasses
import sys

import numpy as np
import torch

from hiertok.data.corpus import heldout_split
from hiertok.data.story_state import CastChecker
from hiertok.eval_planner import _generate
from hiertok.pipeline import Pipeline
from planner.shards import CodeCorpus, encode_documents

torch.set_num_threads(2)
pipe = Pipeline.from_pretrained(sys.argv[1])
docs = list(heldout_split(pipe.tokenizer.cfg.data, source="synthetic", limit=100).docs())
codes, offsets = encode_documents(pipe.tokenizer, docs)
held = CodeCorpus(codes, offsets, {}).prefix(pipe.levels)
usable = [d for d in range(held.num_docs) if len(held.doc(d)) >= 2][:100]
first = torch.as_tensor(np.stack([held.doc(d)[0] for d in usable])).long()[:, None]
max_ideas = max(len(held.doc(d)) for d in usable) + 4
cfg = dataclasses.replace(pipe.cfg.search, num_beams=4, temperature=0.0, diverse_groups=1, max_ideas=max_ideas)
first_ideas = [[pipe.tokenizer.split(docs[d])[0]] for d in usable]
plans, texts = _generate(pipe, first, first_ideas, None, cfg)
check = CastChecker()
for i, (ideas, written) in enumerate(zip(first_ideas, texts)):
    prompt = pipe.tokenizer.join(ideas)
    if not check.grammar_valid([prompt, *written]):
        print(i, "PROMPT", prompt.strip(), f"[{check.world.classify(prompt)}]")
        for sentence, code in zip(written, plans[i].codes[:, 0].tolist()):
            print(f"    {code:>4} {check.world.classify(sentence) or '?':<14} {sentence.strip()}")
