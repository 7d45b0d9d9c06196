"""`hiertok eval planner` with the planned ideas decoded from their first k levels only (the plan keeps all its
levels for the search; the decoder is handed k): does a decoder that is told less by the plan copy more of the
story? Session 17, tiny.yaml seed 1 (`runs/beam/plan-s1`, trained as in "Beam width on tiny.yaml"):

    python experiments/results/plan_depth/decode_levels_eval.py runs/beam/plan-s1 4
"""

import sys

import hiertok.tokenizer as tokenizer
from hiertok.eval_planner import evaluate_planner_run
from hiertok.story_decoding import decode_stories

k = int(sys.argv[2])


def at_depth(tok, codes, levels=None, *args, **kw):
    return decode_stories(tok, codes, k if levels is None else levels, *args, **kw)


tokenizer.decode_stories = at_depth  # IdeaTokenizer.decode_stories calls the module's name
r = evaluate_planner_run(sys.argv[1], data="synthetic", max_docs=100, prompts=100)
keys = ("story_valid", "grammar_valid", "plan_adherence_level1", "goal_reached", "goal_exact", "cast_breaks")
print(sys.argv[1], f"k={k}", {x: getattr(r, x) for x in keys})
