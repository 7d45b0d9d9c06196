"""Expansion that sees the story: how the decoder reads the ideas before the one it writes, side by side.

Each variant trains the tiny tokenizer and planner (their full budgets, synthetic world) with several seeds
through `hiertok train` into RUNS/<variant>-s<seed>/ (finished cells are skipped, interrupted ones resume),
and is evaluated on held-out stories: story_valid (grammar-valid and keeps its cast), grammar_valid,
goal_reached / goal_exact, plan adherence, stories decoded from their true codes that keep their cast, and
the total codelength. Writes results.csv (one row per cell) and results.md (mean ± sd over seeds) to --out.

    python experiments/story_context.py                        # runs/story_context, experiments/results/...
    python experiments/story_context.py --variants none,text --seeds 0 --prompts 50 --runs runs/x --out x
    python experiments/story_context.py --baseline runs/flat-tiny   # the flat LM's continuations beside
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from harness.ablation import Budget, Cell, run_grid, write_table

from hiertok.config import split_planner_overrides
from hiertok.errors import UserError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# name -> tokenizer overrides of configs/tokenizer/tiny.yaml (`planner.KEY=VALUE` ones: of configs/planner/tiny.yaml).
# The earlier variants spell out the decoder they had
# (no copy head, no full-context fraction, no leading space), so that they mean what they meant when tiny.yaml moves.
BEFORE = ["model.decoder.copy=false", "model.decoder.context_full=0", "data.lead_space=false"]
CLEAN = ["model.decoder.detail_noise=0"]  # trained on true codes only
FAST = [
    "model.encoder.dim_head=32",
    "model.decoder.dim_head=32",
    "model.loss.context_grad=false",
    "planner.model.dim_head=32",
    "planner.levels=4",
]
VARIANTS: dict[str, list[str]] = {
    "none": [*BEFORE, "model.decoder.context=0"],  # each idea from its own codes
    # the 8 earlier ideas by their codes only
    "codes": [*BEFORE, "model.decoder.context_text=false", "model.decoder.context_codes=true"],
    # by their tokens once their text is known (the prompt; planned ideas from a later decoding pass on)
    "text": [*BEFORE, *CLEAN],
    # the same, and by their codes before that
    "text_codes": [*BEFORE, "model.decoder.context_codes=true", *CLEAN],
    # by their tokens, a quarter of the ideas trained with another same-gist idea's levels j..16, j uniform in 2..16
    # (hiertok/detail_noise.py)
    "text_noise": [*BEFORE, "model.decoder.detail_noise_from=0"],
    # the same with j = 2, every level after the gist
    "text_noise2": BEFORE,
    # text_noise2, and half of the ideas see every earlier idea's text (as the last decoding pass reads them)
    "text_full": ["model.decoder.copy=false", "data.lead_space=false"],
    # the same with a pointer that copies the context's tokens (decoder/copy.py)
    "copy_nolead": ["data.lead_space=false"],
    # the same, each document's first idea tokenized with a leading space, as later ideas are: tiny.yaml
    "copy": [],
    # tiny.yaml made cheaper to train: heads as wide as the model (dim_head 32, not 64), the next-idea loss's
    # previous ideas encoded without gradients, and a planner of 4 levels
    "fast": FAST,
    # the same, and the planned ideas before the one written shown by their codes, so that one pass might keep the
    # story (on seed 0 it did not: experiments/README.md, "Cheaper to train")
    "fast_codes": [*FAST, "model.decoder.context_codes=true"],
    # fast with twice the tokenizer steps (about tiny.yaml's training time): decoded from their true codes with the
    # story known, fast's held-out stories kept their cast only ~58% of the time, and its loss was still falling.
    # Not tiny.yaml: one run in four merged most events into one level-1 code (experiments/README.md)
    "fast_long": [*FAST, "train.max_steps=3200", "train.eval_every=3200"],
    # fast with half the ideas that see a story trained on another same-gist idea's details (tiny.yaml: a quarter),
    # since fast's decoder wrote a plan's object and colour over the ones the sentence before had fixed
    "fast_noise": [*FAST, "model.decoder.detail_noise=0.5"],
    # fast with a further 15% of the training ideas cut to exactly the planner's 4 levels: generation decodes from
    # 4 levels, which the geometric prefix lengths train on 2% of the ideas; fast-s0's 4-level codes of a painted
    # picture do not say its colour, and its decoder wrote "blue" over the colour the story had fixed
    "fast_depth": [*FAST, "model.quantizer.plan_levels=4", "model.quantizer.plan_levels_dropout=0.15"],
    # tiny.yaml with wrong details only where the story can correct them (hiertok/detail_noise.py:
    # copyable_partners): three in four of tiny.yaml's swaps gave a detail the story never told, which teaches the
    # decoder to guess, not to copy. Every idea with such a partner is swapped (about as many ideas as tiny.yaml's 0.25)
    "copyable": ["model.decoder.detail_noise_copyable=true", "model.decoder.detail_noise=1.0"],
    # tiny.yaml with a self-attention layer over the story context: a generated story copied the prompt's place
    # after the hero had gone elsewhere, and the hero's name for the friend, from context tokens that knew nothing
    # of their sentence (experiments/README.md, "Three more seeds, 4 planned levels, context tokens ...")
    "context_layer": ["model.decoder.context_layers=1"],
    # tiny.yaml's tokenizer made 42% cheaper a step (session 27, not adopted): heads as wide as the model, and the
    # next-idea loss predicting from the one idea before, encoded without gradients (experiments/README.md, "Lean
    # tokenizer steps")
    "lean": [
        "model.encoder.dim_head=32",
        "model.decoder.dim_head=32",
        "model.loss.context=1",
        "model.loss.context_grad=false",
    ],
    # 4 levels in all (FSQ 256, then 3 of 1000: about 38 bits an idea), planned in full: tiny.yaml's codes hold little
    # past level 3 (bits per byte stop falling there), and a planner of 16 levels costs 2.3x one of 4. Heads as wide as
    # the model and the next-idea loss from the one idea before, with gradients (session 28)
    "compact": [
        "model.quantizer.levels=4",
        "model.encoder.dim_head=32",
        "model.decoder.dim_head=32",
        "model.loss.context=1",
        "planner.model.dim_head=32",
    ],
    # tiny.yaml with the copy pointer trained on the targets the story holds (decoder/copy.py): one seed's decoder
    # never copied a colour (its gate shut, its pointer on the object), so plans broke the colour (session 29)
    "pointer": ["model.loss.copy_pointer_weight=0.1"],
    # pointer with a self-attention layer over the story context: pointer-s1's decoder copied the right kinds of
    # words, but the wrong ones of their kind (the hero's name for the friend's, a place the hero had left), where a
    # context token's key knows only its word and position, not its role in its sentence
    "context_pointer": ["model.loss.copy_pointer_weight=0.1", "model.decoder.context_layers=1"],
    # compact with the pointer trained too: compact's seeds broke the colour (seed 0) and the object (seed 1) the story
    # had fixed, each where its decoder never copied that slot
    "compact_pointer": [
        "model.quantizer.levels=4",
        "model.encoder.dim_head=32",
        "model.decoder.dim_head=32",
        "model.loss.context=1",
        "planner.model.dim_head=32",
        "model.loss.copy_pointer_weight=0.1",
    ],
}
METRICS = [
    "story_valid",
    "friend_is_hero",
    "grammar_valid",
    "goal_reached",
    "goal_exact",
    "plan_adherence_level1",
    "decoded_story_valid_first_known",
    "decoded_story_valid_first_known_level1",
    "decoded_story_valid_codes",
    "cast_kept_true_story",
    "exact_match_full",
    "bpb_hier",
    "flat_story_valid",
    "flat_grammar_valid",
    "tokenizer_seconds",
    "planner_seconds",
]


def summarize(rows: list[dict]) -> list[dict]:
    """One row per variant: each metric as 'mean ± sd' over its seeds (sd over 2+ seeds)."""
    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        summary = {"variant": variant, "seeds": len(mine)}
        for m in METRICS:
            values = [r[m] for r in mine if r.get(m) is not None]
            if values:
                sd = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
                summary[m] = f"{statistics.mean(values):.3f}{sd}"
        out.append(summary)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {', '.join(VARIANTS)}")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--runs", default="runs/story_context")
    p.add_argument("--out", default="experiments/results/story_context")
    p.add_argument("--eval-docs", type=int, default=200, help="held-out stories per evaluation")
    p.add_argument("--prompts", type=int, default=200, help="held-out stories generated from")
    p.add_argument("--baseline", default=None, help="a flat LM run scored on the same prompts")
    args = p.parse_args(argv)
    variants = args.variants.split(",")
    if any(v not in VARIANTS for v in variants):
        print(f"story_context: error: variants are {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    cells = []
    for v in variants:
        tokenizer, planner = split_planner_overrides(VARIANTS[v])
        for seed in args.seeds:
            seeded = f"train.seed={seed}"
            cells.append(Cell(f"{v}-s{seed}", [*tokenizer, seeded], {"variant": v, "seed": seed}, [*planner, seeded]))
    budget = Budget(
        tokenizer_config=str(CONFIGS / "tokenizer" / "tiny.yaml"),
        planner_config=str(CONFIGS / "planner" / "tiny.yaml"),
        eval_docs=args.eval_docs,
        prompts=args.prompts,
        baseline=args.baseline,
    )
    try:
        rows = run_grid(cells, Path(args.runs), budget)
    except UserError as e:
        print(f"story_context: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    title = "Story context (tiny configs, synthetic world; mean ± sd over seeds)"
    write_table(summary, ["variant", "seeds", *METRICS], out / "summary.csv", out / "results.md", title)
    write_table(rows, ["cell", *METRICS], out / "results.csv", out / "cells.md", "Story context, per cell")
    print((out / "results.md").read_text())
    return 0 if len(rows) == len(cells) else 1


if __name__ == "__main__":
    sys.exit(main())
