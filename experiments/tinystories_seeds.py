"""TinyStories, hierarchy against the flat LM over several seeds: total codelength at equal training time, name
carry-over and level-1 plan adherence.

Each seed trains the small-gist tokenizer, its level-1 planner and a flat LM of as many parameters
(`configs/baseline/small.yaml`: 350 steps, about the hierarchy's training time on 2 CPU cores; set
`train.max_steps` for another machine with --flat-steps) into RUNS/s<seed>/{tok,plan,flat} (finished stages are
skipped, interrupted ones resume), then runs `hiertok eval codelength` on the held-out stories and
`hiertok eval planner` on their first sentences (--prompts of them, the flat LM's continuations beside;
--decode-candidates: decodings per planned idea, default the planner run's).
Writes results.csv (one row per seed), results.md (mean ± sd) and examples.md (the first five prompts, both
systems' continuations side by side) to --out.

    python experiments/tinystories_seeds.py --data $TINYSTORIES --seeds 0 1 2 --flat-steps 400 --runs runs/ts \
        --out experiments/results/tinystories_seeds     # $TINYSTORIES: a local JSONL copy (default: the hub's)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from harness.ablation import train_stage, write_table

from hiertok.cli import main as cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
METRICS = [
    "bpb_hier",
    "bpb_flat",
    "ratio",
    "bpb_hier_codes",
    "bpb_hier_tokens",
    "train_s_hier",
    "train_s_flat",
    "name_carryover",
    "flat_name_carryover",
    "plan_adherence_level1",
    "decode_candidates",
]
CODELENGTH = ["bpb_hier", "bpb_flat", "bpb_hier_codes", "bpb_hier_tokens", "train_s_hier", "train_s_flat"]


def run_seed(
    seed: int, root: Path, data: list[str], flat_steps: list[str], prompts: int, candidates: int | None = None
) -> dict:
    """Train (or reuse) one seed's three stages and evaluate them (`candidates`: decodings per planned idea,
    None: the planner run's); returns its row."""
    d = root / f"s{seed}"
    seeded = [f"train.seed={seed}", "train.progress=false", *data]
    train_stage("tokenizer", str(CONFIGS / "tokenizer" / "small-gist.yaml"), d / "tok", seeded)
    planner = [f"tokenizer={d / 'tok'}", f"train.seed={seed}", "train.progress=false"]
    train_stage("planner", str(CONFIGS / "planner" / "small-gist.yaml"), d / "plan", planner)
    flat = [f"tokenizer={d / 'tok'}", f"match={d / 'plan'}", f"train.seed={seed}", "train.progress=false", *flat_steps]
    train_stage("baseline", str(CONFIGS / "baseline" / "small.yaml"), d / "flat", flat)
    planner_eval = ["eval", "planner", "--prompts", str(prompts)]
    if candidates is not None:
        planner_eval += ["--decode-candidates", str(candidates)]
        stale = d / "eval_planner.json"  # generations of another candidate count are generated again
        if prompts and stale.exists() and json.loads(stale.read_text())["decode_candidates"] != candidates:
            stale.unlink()
    for name, args in (("codelength.json", ["eval", "codelength"]), ("eval_planner.json", planner_eval)):
        if not (d / name).exists() and (prompts or name == "codelength.json"):
            if cli([*args, "--ckpt", str(d / "plan"), "--baseline", str(d / "flat"), "--out", str(d / name)]) != 0:
                raise RuntimeError(f"{' '.join(args)} of s{seed} failed")
    code = json.loads((d / "codelength.json").read_text())
    row = {"seed": seed, **{k: code[k] for k in CODELENGTH}, "ratio": code["bpb_hier"] / code["bpb_flat"]}
    if (d / "eval_planner.json").exists():  # --prompts 0 runs no generations, and reads those already run
        plan = json.loads((d / "eval_planner.json").read_text())
        row["name_carryover"] = plan["name_carryover"]
        row["flat_name_carryover"] = plan["flat"]["name_carryover"]
        row["plan_adherence_level1"] = plan["plan_adherence_level1"]
        row["decode_candidates"] = plan["decode_candidates"]
        row["examples"] = list(zip(plan["examples"], plan["flat"]["examples"]))
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--runs", default="runs/ts")
    p.add_argument("--out", default="experiments/results/tinystories_seeds")
    p.add_argument("--data", default=None, help="the corpus (default: the config's data.source)")
    p.add_argument("--flat-steps", type=int, default=None, help="the flat LM's steps (default: the config's)")
    p.add_argument(
        "--prompts", type=int, default=300, help="first sentences generated from (0: none, earlier ones read)"
    )
    p.add_argument(
        "--decode-candidates",
        type=int,
        default=None,
        help="decodings per planned idea (default: the planner run's); an evaluation of another count is redone",
    )
    args = p.parse_args(argv)
    data = [f"data.source={args.data}"] if args.data else []
    steps = [] if args.flat_steps is None else [f"train.max_steps={args.flat_steps}"]
    try:
        rows = [run_seed(s, Path(args.runs), data, steps, args.prompts, args.decode_candidates) for s in args.seeds]
    except RuntimeError as e:
        print(f"tinystories_seeds: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"seeds": len(rows)}
    for m in METRICS:
        values = [r[m] for r in rows if m in r]
        sd = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
        count = f" ({len(values)} seeds)" if len(values) < len(rows) else ""
        summary[m] = f"{statistics.mean(values):.3f}{sd}{count}" if values else "-"
    title = "TinyStories: hierarchy (small-gist + level-1 planner) against the flat LM (mean ± sd over seeds)"
    write_table([summary], ["seeds", *METRICS], out / "summary.csv", out / "results.md", title)
    cells = [{k: v for k, v in r.items() if k != "examples"} for r in rows]
    write_table(cells, ["seed", *METRICS], out / "results.csv", out / "cells.md", "TinyStories, per seed")
    shown = next((r for r in rows if "examples" in r), {"seed": None, "examples": []})
    lines = [f"# The first five prompts of the held-out stories (seed {shown['seed']}): hierarchy | flat LM", ""]
    for hier, flat in shown["examples"]:
        lines += [f"**Prompt:** {hier['prompt'].strip()}", "", f"- hierarchy: {' '.join(hier['text'].split())}"]
        lines += [f"- flat LM: {' '.join(flat['text'].split())}", ""]
    (out / "examples.md").write_text("\n".join(lines))
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
