"""The held-out prompts whose generated story breaks the world's grammar, as `hiertok eval planner` generates them
(100 prompts, beam 4): each planned sentence with its level-1 code and the event the world's templates parse it as.

    python experiments/results/lean/grammar_breaks.py runs/lean/s2/plan
"""

import sys

import torch

from hiertok.data.corpus import heldout_split
from hiertok.data.story_state import CastChecker
from hiertok.eval_planner import best_plans, held_out_prompts
from hiertok.pipeline import Pipeline

torch.set_num_threads(2)
pipe = Pipeline.from_pretrained(sys.argv[1])
docs = list(heldout_split(pipe.tokenizer.cfg.data, source="synthetic", limit=100).docs())
prompts = held_out_prompts(pipe, docs, 100, synthetic=True, beams=4)
plans, texts = best_plans(pipe, prompts)
check = CastChecker()
for i, (ideas, written) in enumerate(zip(prompts.ideas, texts)):
    prompt = pipe.tokenizer.join(ideas)
    if not check.grammar_valid([prompt, *written]):
        print(i, "PROMPT", prompt.strip(), f"[{check.world.classify(prompt)}]")
        for sentence, code in zip(written, plans[i].codes[:, 0].tolist()):
            print(f"    {code:>4} {check.world.classify(sentence) or '?':<14} {sentence.strip()}")
