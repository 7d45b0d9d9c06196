"""The best beam plan of some held-out prompts, as `hiertok eval planner` generates them (beam 4), decoded, with each
idea's first 4 planned codes and the story's first cast break. The numbers are the prompts' places among the
evaluation's 100.

    python experiments/results/story_keeping/show_plans.py runs/seeds/plan-s1 12,27,68,87
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
for i in (int(n) for n in sys.argv[2].split(",")):
    prompt = pipe.tokenizer.join(prompts.ideas[i])
    print("PROMPT:", prompt.strip(), "| breaks", check.count_breaks([[prompt, *texts[i]]]))
    for line, codes in zip(texts[i], plans[i].codes[:, :4].tolist()):
        print("   ", codes, line)
