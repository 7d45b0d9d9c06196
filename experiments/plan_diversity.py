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

from hiertok import eval_planner
from hiertok.data.story_state import CastChecker
from hiertok.errors import UserError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--planner", required=True, help="planner run directory")
    p.add_argument("--prompts", type=int, default=100, help="held-out stories prompted with their first sentence")
    p.add_argument("--beams", type=int, default=4)
    args = p.parse_args(argv)
    seen: list[tuple[list[tuple[int, ...]], list[list[str]], list[str]]] = []
    generate = eval_planner._generate

    def recording(pipe, first, first_ideas, goals, cfg):  # the evaluation's own generation, its plans kept
        plans, texts = generate(pipe, first, first_ideas, goals, cfg)
        keys = [tuple(int(c) for c in plan.codes[:, 0]) for plan in plans]
        seen.append((keys, texts, [pipe.tokenizer.join(ideas) for ideas in first_ideas]))
        return plans, texts

    eval_planner._generate = recording
    try:
        result = eval_planner.evaluate_planner_run(
            args.planner, max_docs=args.prompts, prompts=args.prompts, beams=args.beams
        )
    except (UserError, OSError) as e:
        print(f"plan_diversity: error: {e}", file=sys.stderr)
        return 2
    finally:
        eval_planner._generate = generate
    keys, texts, prompts = seen[0]  # the first call plans without a goal; the second toward each story's last sentence
    ranked = Counter(keys).most_common()
    check = CastChecker()
    top = []
    for key, serves in ranked[:5]:
        stories = [[p, *t] for k, p, t in zip(keys, prompts, texts) if k == key]
        top.append({"serves": serves, "breaks": check.count_breaks(stories)})
    out = {"prompts": len(keys), "distinct_level1_plans": len(ranked), "most_common_plans": top}
    print(json.dumps({**out, "story_valid": result.story_valid, "cast_breaks": result.cast_breaks}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
