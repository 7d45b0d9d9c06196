"""`hiertok eval planner` with context-aware decoding (Shi et al. 2023), a one-off measurement (session 13).

Every decoding step scores tokens by (1 + a) log p(token | codes, story) - a log p(token | codes alone): the rows
run twice in one batch, the second time with the story masked out. Later passes decode token by token (no drafts,
whose check would use the plain scores).

    python experiments/results/plan_depth/context_guidance_eval.py 0.15 runs/story_context/fast-s0/planner
"""

import sys

import torch

import decoder.model as model
import hiertok.pipeline as pipeline
from decoder.model import Condition
from hiertok.eval_planner import evaluate_planner_run

generate_module = sys.modules["decoder.generate"]
KEYS = ["story_valid", "grammar_valid", "friend_is_hero", "plan_adherence_level1", "goal_reached", "cast_breaks"]


def main() -> None:
    alpha, run = float(sys.argv[1]), sys.argv[2]
    forward, reorder, expand = model.IdeaDecoder.forward, generate_module._reorder_cache, pipeline.Pipeline.expand

    def guided(self, tokens, cond, cache=None):
        if cond.context is None or alpha == 0:
            return forward(self, tokens, cond, cache)
        b = len(tokens)
        no_story = Condition(
            torch.cat([cond.prefix, cond.prefix]),
            torch.cat([cond.context, cond.context]),
            torch.cat([cond.context_mask, torch.zeros_like(cond.context_mask)]),
            torch.cat([cond.context_ids, torch.full_like(cond.context_ids, -1)]),
        )
        logits, inter = forward(self, torch.cat([tokens, tokens]), no_story, cache)
        inter.doubled = True
        with_story, without = logits[:b].float().log_softmax(-1), logits[b:].float().log_softmax(-1)
        return (1 + alpha) * with_story - alpha * without, inter

    def reorder_both(cache, rows):
        if not getattr(cache, "doubled", False):
            return reorder(cache, rows)
        half = next(i.cached_kv[0].shape[0] for i in cache.attn_intermediates if i.cached_kv is not None) // 2
        reorder(cache, torch.cat([rows, rows + half]))

    model.IdeaDecoder.forward = guided
    generate_module._reorder_cache = reorder_both
    pipeline.Pipeline.expand = lambda self, *a, **kw: expand(self, *a, **{**kw, "verify": False})
    result = evaluate_planner_run(run, None, 100, 100, 4).to_dict()
    print(alpha, {k: result[k] for k in KEYS})


if __name__ == "__main__":
    main()
