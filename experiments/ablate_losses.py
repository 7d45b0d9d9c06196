"""Loss ablation: the idea-learning terms of the tokenizer, each added to reconstruction alone.

Each cell trains a tokenizer with its loss weights and a planner on its codes through `hiertok train`
into RUNS/<cell>/ (finished cells are skipped, interrupted ones resume), then reports reconstruction,
planner bits per idea, level-1 code / event NMI (synthetic world) and the total codelength in bits per
byte; the `next_mse` cell also reports how well the continuous (MSE, Large-Concept-Model style)
next-idea regressor predicts held-out ideas, beside the discrete planner's next-idea accuracy.
Writes results.csv, results.md and PNG plots to --out.

    python experiments/ablate_losses.py   # synthetic: runs/ablate_losses/<cell>, experiments/results/ablate_losses
    python experiments/ablate_losses.py --data $TINYSTORIES \\
        --runs runs/ablate_losses_ts --out experiments/results/ablate_losses_ts
    python experiments/ablate_losses.py --cells recon,next_idea_l1 --set model.loss.next_idea_tau=0.2 \\
        --runs runs/x --out x
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.ablation import RULE, Cell, write_table
from harness.ablation_cli import add_grid_arguments, budget_from_args, run_and_report
from harness.ablation_plots import bpb_bars, metric_bars

from hiertok.errors import UserError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY_STEPS = 600  # tokenizer and planner steps per cell on the tiny configs
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
    "trained",
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_grid_arguments(p, "ablate_losses", TINY_STEPS)
    p.add_argument("--cells", default=",".join(CELLS), help=f"comma-separated subset of {', '.join(CELLS)}")
    p.add_argument("--set", nargs="*", default=[], help="tokenizer overrides for every cell, key=value")
    args = p.parse_args(argv)
    unknown = [c for c in args.cells.split(",") if c not in CELLS]
    if unknown:
        print(f"ablate_losses: error: unknown cell {unknown[0]!r} (choose from {', '.join(CELLS)})", file=sys.stderr)
        return 2
    cells = [Cell(name, CELLS[name], {}) for name in args.cells.split(",")]
    try:
        budget, base = budget_from_args(args, CONFIGS, TINY_STEPS, [*RECON_ONLY, *args.set])
    except UserError as e:
        print(f"ablate_losses: error: {e}", file=sys.stderr)
        return 2

    def report(rows: list[dict], out: Path) -> None:
        title = f"Loss ablation ({base} configs, {args.seeds} seed{'s' if args.seeds > 1 else ''})"
        write_table(rows, COLUMNS, out / "results.csv", out / "results.md", title, RULE)
        metrics = ["exact_match_full", "event_nmi_level1", "next_top1_level1", "plan_adherence_level1"]
        shown = [m for m in metrics if any(r.get(m) is not None for r in rows)]
        metric_bars(rows, shown, out / "metrics.png", "Losses")
        bpb_bars(rows, out / "bpb_by_cell.png", "Total codelength by cell")

    return run_and_report("ablate_losses", cells, args, budget, report)


if __name__ == "__main__":
    sys.exit(main())
