"""The best beam plan of some held-out prompts, decoded, with each idea's first 4 planned codes and the story's
first cast break.

    python experiments/results/story_keeping/show_plans.py runs/seeds/plan-s1 12,27,68,87
"""

import dataclasses
import sys

import torch

from hiertok.data.story_state import CastChecker
from hiertok.data.synthetic import generate_stories
from hiertok.pipeline import Pipeline

torch.set_num_threads(2)
pipe = Pipeline.from_pretrained(sys.argv[1])
tok = pipe.tokenizer
stories = generate_stories(100, seed=1)
chosen = [stories[int(i)] for i in sys.argv[2].split(",")]
first_ideas = [[tok.split(s.text)[0]] for s in chosen]
first = tok.encode([s.sentences[0] for s in chosen]).ids[:, :1, : pipe.levels]
cfg = dataclasses.replace(pipe.cfg.search, num_beams=4, temperature=0.0, max_ideas=14)
found = pipe.plans(first, None, cfg)
texts = pipe.expand(first, [[f[0]] for f in found], prompt_ideas=first_ideas)
check = CastChecker()
for story, plans, written in zip(chosen, found, texts):
    prompt = story.sentences[0]
    print("PROMPT:", prompt, "| breaks", check.count_breaks([[prompt, *written[0]]]))
    for line, codes in zip(written[0], plans[0].codes[:, :4].tolist()):
        print("   ", codes, line)
