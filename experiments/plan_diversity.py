"""How many different plans beam search gives over held-out prompts (the plans `hiertok eval planner` scores).

    python experiments/plan_diversity.py --planner runs/story_context/fast-s0/planner --prompts 100

Prints the number of distinct level-1 plans (no goal) and how many prompts the most common one serves. A plan that
hardly depends on its prompt makes story_valid swing between seeds: when the shared plan decodes badly, every prompt
that got it fails together.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from hiertok import eval_planner


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--planner", required=True, help="planner run directory")
    p.add_argument("--prompts", type=int, default=100, help="held-out stories prompted with their first sentence")
    p.add_argument("--beams", type=int, default=4)
    args = p.parse_args(argv)
    seen: list[list[tuple[int, ...]]] = []
    generate = eval_planner._generate

    def recording(*a, **k):  # the evaluation's own generation, with each call's level-1 plans kept
        plans, texts = generate(*a, **k)
        seen.append([tuple(int(c) for c in plan.codes[:, 0]) for plan in plans])
        return plans, texts

    eval_planner._generate = recording
    try:
        result = eval_planner.evaluate_planner_run(
            args.planner, max_docs=args.prompts, prompts=args.prompts, beams=args.beams
        )
    except (ValueError, OSError) as e:
        print(f"plan_diversity: error: {e}", file=sys.stderr)
        return 2
    finally:
        eval_planner._generate = generate
    free = Counter(seen[0])  # the first call plans without a goal; the second toward each story's last sentence
    print(
        json.dumps(
            {
                "prompts": len(seen[0]),
                "distinct_level1_plans": len(free),
                "most_common_serves": free.most_common(1)[0][1],
                "story_valid": result.story_valid,
                "cast_breaks": result.cast_breaks,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
