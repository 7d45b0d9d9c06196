"""Codebook ablation: levels x codebook sizes x quantizer (FSQ, VQ, LFQ) x hierarchy (residual, matryoshka).

Each cell trains a tokenizer and a planner on its codes through `hiertok train` into RUNS/<cell>/ (a
finished cell is skipped, an interrupted one resumes), then is evaluated on held-out documents:
reconstruction by prefix, code utilization, planner bits per idea and next-idea accuracy, and the total
codelength in bits per byte (`hiertok eval codelength`). Writes results.csv, results.md and PNG plots to
--out. Nested dropout is uniform over prefix lengths in both hierarchies (residual supports only that),
on 30% of samples (matryoshka) or batches (residual); the loss is reconstruction alone.

    python experiments/ablate_codebooks.py                 # synthetic world, <= 30 min: runs/ablate_codebooks/<cell>,
                                                           # tables and plots in experiments/results/ablate_codebooks
    python experiments/ablate_codebooks.py --data $TINYSTORIES \\
        --runs runs/ablate_codebooks_ts --out experiments/results/ablate_codebooks_ts    # TinyStories, small configs
    accelerate launch --multi_gpu --num_processes N experiments/ablate_codebooks.py --base-configs base ...

A layout is LEVELSxSIZE, or several joined by '+' for per-level sizes: "1x256+3x1024" is a 256-code first
level and three of 1024 (matryoshka only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.ablation import RULE, Cell, write_table
from harness.ablation_cli import add_grid_arguments, budget_from_args, run_and_report
from harness.ablation_plots import bpb_bars, line_plot, utilization_plot

from hiertok.errors import UserError
from hiertok.quantize import FSQ_LEVELS, actual_codebook_size

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY_STEPS = 400  # tokenizer and planner steps per cell on the tiny configs (the grid in <= 30 minutes)
DEFAULT_LAYOUTS = ["4x64", "4x256", "8x256"]
COLUMNS = [
    "cell",
    "code_bits",
    "exact_match_k1",
    "exact_match_full",
    "utilization_mean",
    "planner_bits_per_idea",
    "next_top1_level1",
    "bpb_hier",
    "bpb_hier_codes",
    "bpb_hier_tokens",
    "tokenizer_seconds",
    "steps",
    "trained",
]
RECON_COLUMNS = [  # --tokenizer-only on text: reconstruction alone
    "cell",
    "code_bits",
    "exact_match_k1",
    "exact_match_full",
    "token_accuracy_full",
    "utilization_mean",
    "tokenizer_seconds",
    "steps",
    "last_fifth_gain",
    "last_fifth_exact_gain",
    "trained",
]
PIXEL_COLUMNS = [  # --tokenizer-only on video runs: reconstruction of frames
    "cell",
    "exact_match_k1",
    "exact_match_full",
    "pixel_accuracy_full",
    "objects_right_full",
    "tokenizer_seconds",
    "steps",
    "last_fifth_gain",
    "last_fifth_exact_gain",
    "trained",
]


def parse_layout(text: str) -> list[int]:
    """'1x256+3x1024' -> [256, 1024, 1024, 1024] (one nominal codebook size per level)."""
    sizes = []
    for part in text.split("+"):
        count, _, size = part.partition("x")
        if not (count.isdigit() and size.isdigit()) or int(count) < 1:
            raise UserError(f"layout {text!r}: expected LEVELSxSIZE[+LEVELSxSIZE...], e.g. 4x256")
        sizes += [int(size)] * int(count)
    return sizes


def supports(kind: str, hierarchy: str, sizes: list[int]) -> bool:
    """Whether a quantizer can take this layout (residual: one size; FSQ: a tabulated size; LFQ: 2^n)."""
    if hierarchy == "residual" and len(set(sizes)) > 1:
        return False
    if kind == "fsq":
        return all(s in FSQ_LEVELS for s in sizes)
    if kind == "lfq":
        return all(s >= 2 and s & (s - 1) == 0 for s in sizes)
    return all(s >= 2 for s in sizes)


def grid(kinds: list[str], hierarchies: list[str], layouts: list[str]) -> list[Cell]:
    cells = []
    for layout in layouts:
        sizes = parse_layout(layout)
        for kind in kinds:
            for hierarchy in hierarchies:
                if not supports(kind, hierarchy, sizes):
                    print(f"skipping {kind}-{hierarchy}-{layout}: that quantizer cannot take this layout")
                    continue
                compact = sorted(set(sizes), key=sizes.index)  # the config's form: the last size repeats
                overrides = [
                    f"model.quantizer.kind={kind}",
                    f"model.quantizer.hierarchy={hierarchy}",
                    f"model.quantizer.levels={len(sizes)}",
                    f"model.quantizer.codebook_sizes=[{','.join(map(str, compact))}]",
                    "model.quantizer.prefix_dist=uniform",
                ]
                labels = {
                    "kind": kind,
                    "hierarchy": hierarchy,
                    "levels": len(sizes),
                    "codebook_size": actual_codebook_size(kind, sizes[-1]),
                    "layout": layout,
                }
                cells.append(Cell(f"{kind}-{hierarchy}-{layout}", overrides, labels))
    return cells


def plot(rows: list[dict], out: Path, planner: bool = True) -> None:
    group = ["kind", "hierarchy"]
    if any(r.get("code_bits") is not None for r in rows):
        line_plot(rows, "code_bits", "exact_match_full", group, out / "exact_match_vs_bits.png", "Reconstruction")
    for r in rows:
        r["series"] = f"{r['kind']} {r['hierarchy']} L={r['levels']}"
    line_plot(
        rows,
        "codebook_size",
        "exact_match_full",
        ["series"],
        out / "exact_match_vs_codebook_size.png",
        "Reconstruction at full depth",
        logx=True,
    )
    if any(r.get("utilization_by_level") for r in rows):
        utilization_plot(rows, out / "utilization_by_level.png", "Code utilization per level")
    if not planner:
        return
    line_plot(
        rows,
        "codebook_size",
        "planner_bits_per_idea",
        ["series"],
        out / "planner_bits_vs_codebook_size.png",
        "Planner bits per idea",
        logx=True,
    )
    line_plot(rows, "code_bits", "bpb_hier", group, out / "bpb_vs_bits.png", "Total codelength (bits per byte)")
    bpb_bars(rows, out / "bpb_by_cell.png", "Total codelength by cell")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_grid_arguments(p, "ablate_codebooks", TINY_STEPS)
    p.add_argument("--kinds", default="fsq,vq,lfq")
    p.add_argument("--hierarchies", default="matryoshka,residual")
    p.add_argument("--layouts", default=",".join(DEFAULT_LAYOUTS), help="comma-separated, e.g. 4x64,4x256,8x256")
    args = p.parse_args(argv)
    try:
        cells = grid(args.kinds.split(","), args.hierarchies.split(","), args.layouts.split(","))
    except UserError as e:
        print(f"ablate_codebooks: error: {e}", file=sys.stderr)
        return 2
    # Codes trained for reconstruction alone, so that the quantizer is what varies (experiments/ablate_losses.py
    # varies the losses); a config's next-idea loss is also 1.8x slower per step.
    try:
        budget, base = budget_from_args(args, CONFIGS, TINY_STEPS, ["model.loss.next_idea_weight=0"])
    except UserError as e:
        print(f"ablate_codebooks: error: {e}", file=sys.stderr)
        return 2

    def report(rows: list[dict], out: Path) -> None:
        rows.sort(key=lambda r: (r["kind"], r["hierarchy"], r["levels"], r["codebook_size"]))
        columns = COLUMNS if budget.planner else PIXEL_COLUMNS if base == "video" else RECON_COLUMNS
        title = f"Codebook ablation ({base} configs, {args.seeds} seed{'s' if args.seeds > 1 else ''})"
        write_table(rows, columns, out / "results.csv", out / "results.md", title, RULE)
        plot(rows, out, budget.planner)

    return run_and_report("ablate_codebooks", cells, args, budget, report)


if __name__ == "__main__":
    sys.exit(main())
