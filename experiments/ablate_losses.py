"""Loss ablation: the idea-learning terms of the tokenizer, each added to reconstruction alone.

Each cell trains a tokenizer with its loss weights and a planner on its codes through `hiertok train`
into RUNS/<cell>/ (finished cells are skipped, interrupted ones resume), then reports reconstruction,
planner bits per idea, level-1 code / event NMI (synthetic world) and the total codelength in bits per
byte; the `next_mse` cell also reports how well the continuous (MSE, Large-Concept-Model style)
next-idea regressor predicts held-out ideas, beside the discrete planner's next-idea accuracy.
Writes results.csv, results.md and PNG plots to --out.

    python experiments/ablate_losses.py   # synthetic: runs/ablate_losses/<cell>, experiments/results/ablate_losses
    python experiments/ablate_losses.py --data ../shared/data/tinystories/stories.jsonl \\
        --runs runs/ablate_losses_ts --out experiments/results/ablate_losses_ts
    python experiments/ablate_losses.py --cells recon,next_idea_l1 --set model.loss.next_idea_tau=0.2 \\
        --runs runs/x --out x
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hiertok.ablation import Budget, Cell, run_grid, write_table
from hiertok.ablation_plots import bpb_bars, metric_bars

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# Every cell starts from reconstruction alone, whatever the base config turns on.
RECON_ONLY = [
    f"model.loss.{key}=0"
    for key in (
        "bow_weight",
        "next_idea_weight",
        "next_idea_levels",
        "reencode_weight",
        "uniformity_weight",
        "next_mse_weight",
    )
]
# name -> tokenizer overrides; weights chosen so each term starts at roughly the size of reconstruction.
CELLS: dict[str, list[str]] = {
    "recon": [],
    "next_idea_l1": ["model.loss.next_idea_weight=0.1", "model.loss.next_idea_levels=1"],
    "next_idea_all": ["model.loss.next_idea_weight=0.1"],
    "reencode": ["model.loss.reencode_weight=0.1"],
    "uniformity_tcr": ["model.loss.uniformity_weight=0.01", "model.loss.uniformity=tcr"],
    "uniformity_infonce": ["model.loss.uniformity_weight=0.1", "model.loss.uniformity=infonce"],
    "next_mse": ["model.loss.next_mse_weight=1.0"],
}
COLUMNS = [
    "cell",
    "exact_match_k1",
    "exact_match_full",
    "event_nmi_level1",
    "planner_bits_per_idea",
    "next_top1_level1",
    "next_top1_full",
    "bpb_hier",
    "continuous_next_top1_level1",
    "continuous_next_top1_full",
    "tokenizer_seconds",
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default="runs/ablate_losses", help="the cells' run directories")
    p.add_argument("--out", default="experiments/results/ablate_losses", help="results.csv/md, plots")
    p.add_argument("--data", default=None, help="text source (default: the synthetic world); implies small configs")
    p.add_argument("--base-configs", default=None, help="tiny | small | base (default: tiny, small with --data)")
    p.add_argument("--cells", default=",".join(CELLS), help=f"comma-separated subset of {', '.join(CELLS)}")
    p.add_argument("--set", nargs="*", default=[], help="tokenizer overrides for every cell, key=value")
    p.add_argument("--tokenizer-steps", type=int, default=None, help="default: 600 on tiny, the config's otherwise")
    p.add_argument("--planner-steps", type=int, default=None, help="default: 600 on tiny, the config's otherwise")
    p.add_argument("--eval-docs", type=int, default=100, help="held-out documents per evaluation")
    p.add_argument("--prompts", type=int, default=0, help="generations per planner evaluation (0: none)")
    args = p.parse_args(argv)
    unknown = [c for c in args.cells.split(",") if c not in CELLS]
    if unknown:
        print(f"ablate_losses: error: unknown cell {unknown[0]!r} (choose from {', '.join(CELLS)})", file=sys.stderr)
        return 2
    cells = [Cell(name, CELLS[name], {}) for name in args.cells.split(",")]
    base = args.base_configs or ("small" if args.data else "tiny")
    tiny = base == "tiny"
    budget = Budget(
        tokenizer_config=str(CONFIGS / "tokenizer" / f"{base}.yaml"),
        planner_config=str(CONFIGS / "planner" / f"{base}.yaml"),
        data=args.data,
        tokenizer_steps=args.tokenizer_steps or (600 if tiny else None),
        planner_steps=args.planner_steps or (600 if tiny else None),
        eval_docs=args.eval_docs,
        prompts=args.prompts,
        tokenizer_overrides=[*RECON_ONLY, *args.set],
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        rows = run_grid(cells, Path(args.runs), budget)
    except ValueError as e:
        print(f"ablate_losses: error: {e}", file=sys.stderr)
        return 2
    if not rows:
        print("ablate_losses: error: no cell finished", file=sys.stderr)
        return 1
    write_table(rows, COLUMNS, out / "results.csv", out / "results.md", f"Loss ablation ({base} configs)")
    metrics = ["exact_match_full", "event_nmi_level1", "next_top1_level1", "plan_adherence_level1"]
    metric_bars(rows, [m for m in metrics if any(r.get(m) is not None for r in rows)], out / "metrics.png", "Losses")
    bpb_bars(rows, out / "bpb_by_cell.png", "Total codelength by cell")
    print((out / "results.md").read_text())
    return 0 if len(rows) == len(cells) else 1


if __name__ == "__main__":
    sys.exit(main())
