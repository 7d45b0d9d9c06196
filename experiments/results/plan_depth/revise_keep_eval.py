"""`hiertok eval planner --revise-details`, keeping the plan's first K levels instead of 1 (session 13).

Runs on branch exp/revise-details (planner/revise.py is not on main):

    python experiments/results/plan_depth/revise_keep_eval.py 2 runs/story_context/fast-s0/planner
"""

import sys

import planner.revise as revise

import hiertok.pipeline as pipeline
from hiertok.eval_planner import evaluate_planner_run

KEYS = ["story_valid", "grammar_valid", "friend_is_hero", "plan_adherence_level1", "goal_reached", "cast_breaks"]


def main() -> None:
    keep, run = int(sys.argv[1]), sys.argv[2]
    original = revise.revise_details

    def keeping(planner, written, planned, start, keep_levels=1, goal=None, cont=None):
        return original(planner, written, planned, start, keep, goal, cont)

    pipeline.revise_details = keeping
    result = evaluate_planner_run(run, None, 100, 100, 4, revise_details=True).to_dict()
    print(keep, {k: result[k] for k in KEYS})


if __name__ == "__main__":
    main()
