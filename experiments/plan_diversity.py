"""How many different plans beam search gives over held-out prompts (the plans `hiertok eval planner` scores).

    python experiments/plan_diversity.py --planner runs/story_context/fast-s0/planner --prompts 100

Prints the number of distinct level-1 plans (no goal), and for the most common plans how many prompts each serves
and how their stories break (`CastChecker`, on the synthetic world). A plan that hardly depends on its prompt makes
story_valid swing between seeds: when a shared plan decodes badly, every prompt that got it fails together.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from hiertok.data.corpus import heldout_split
from hiertok.data.story_state import CastChecker
from hiertok.errors import UserError
from hiertok.eval_planner import best_plans, held_out_prompts
from hiertok.pipeline import Pipeline
from planner.config import data_config


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--planner", required=True, help="planner run directory")
    p.add_argument("--prompts", type=int, default=100, help="held-out stories prompted with their first sentence")
    p.add_argument("--beams", type=int, default=4)
    args = p.parse_args(argv)
    try:
        pipe = Pipeline.from_pretrained(args.planner)
        data = data_config(pipe.cfg, pipe.tokenizer)
        docs = list(heldout_split(data, limit=args.prompts).docs())
        asked = held_out_prompts(pipe, docs, args.prompts, synthetic=True, beams=args.beams)
    except (UserError, OSError) as e:
        print(f"plan_diversity: error: {e}", file=sys.stderr)
        return 2
    plans, texts = best_plans(pipe, asked)  # as `hiertok eval planner` plans them, without a goal
    keys = [tuple(int(c) for c in plan.codes[:, 0]) for plan in plans]
    stories = [[pipe.tokenizer.join(ideas), *t] for ideas, t in zip(asked.ideas, texts)]
    ranked = Counter(keys).most_common()
    check = CastChecker()
    top = []
    for key, serves in ranked[:5]:
        served = [story for k, story in zip(keys, stories) if k == key]
        top.append({"serves": serves, "breaks": check.count_breaks(served)})
    out = {"prompts": len(keys), "distinct_level1_plans": len(ranked), "most_common_plans": top}
    story_valid = sum(check.story_valid(story) for story in stories) / len(stories)
    print(json.dumps({**out, "story_valid": story_valid, "cast_breaks": check.count_breaks(stories)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
