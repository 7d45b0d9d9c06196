"""The command line the ablation scripts share: budget options, and running a grid into tables and plots."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from hiertok.errors import UserError

from .ablation import RULE, Budget, Cell, run_grid, with_seeds, write_table
from .seeds import aggregate


def add_grid_arguments(p: argparse.ArgumentParser, name: str, tiny_steps: int) -> None:
    """The options every ablation script takes: where cells and results go, data, budgets, evaluation."""
    p.add_argument("--runs", default=f"runs/{name}", help="the cells' run directories")
    p.add_argument("--out", default=f"experiments/results/{name}", help="results.csv/md, plots")
    p.add_argument("--data", default=None, help="text source (default: the synthetic world); implies small configs")
    p.add_argument(
        "--base-configs",
        default=None,
        help="a configs/tokenizer (and configs/planner) name: tiny | small | base | video | tiny-recon ... "
        "(default: tiny, small with --data)",
    )
    for stage in ("tokenizer", "planner"):
        p.add_argument(
            f"--{stage}-steps", type=int, default=None, help=f"default: {tiny_steps} on tiny, the config's otherwise"
        )
    p.add_argument("--eval-docs", type=int, default=100, help="held-out documents per evaluation")
    p.add_argument("--prompts", type=int, default=0, help="generations per planner evaluation (0: none)")
    p.add_argument("--seeds", type=int, default=1, help="train every cell with seeds 0..N-1; tables give mean ± sd")
    p.add_argument(
        "--tokenizer-only", action="store_true", help="no planner: score each cell's reconstruction (the pixel grid)"
    )


def budget_from_args(
    args: argparse.Namespace, configs: Path, tiny_steps: int, tokenizer_overrides: list[str]
) -> tuple[Budget, str]:
    """The grid's Budget from `add_grid_arguments`' options, and the name of the base configs.

    Args:
        args: parsed options.
        configs: the repository's configs/ directory.
        tiny_steps: training steps per stage on the tiny configs unless given.
        tokenizer_overrides: overrides for every cell's tokenizer.
    """
    base = args.base_configs or ("small" if args.data else "tiny")
    default_steps = tiny_steps if base == "tiny" else None
    tokenizer, planner = configs / "tokenizer" / f"{base}.yaml", configs / "planner" / f"{base}.yaml"
    if not tokenizer.is_file() or not (args.tokenizer_only or planner.is_file()):
        missing = tokenizer if not tokenizer.is_file() else planner
        raise UserError(f"--base-configs {base}: no {missing.relative_to(configs.parent)}")
    budget = Budget(
        tokenizer_config=str(tokenizer),
        planner_config=None if args.tokenizer_only else str(planner),
        data=args.data,
        tokenizer_steps=args.tokenizer_steps or default_steps,
        planner_steps=args.planner_steps or default_steps,
        eval_docs=args.eval_docs,
        prompts=args.prompts,
        tokenizer_overrides=tokenizer_overrides,
        planner=not args.tokenizer_only,
    )
    return budget, base


def run_and_report(
    name: str, cells: list[Cell], args: argparse.Namespace, budget: Budget, report: Callable[[list[dict], Path], None]
) -> int:
    """Run the grid (every cell once per seed of `--seeds`), write each run's steps and budget verdict to
    results_by_seed.csv/md, let `report` write results.csv/md and plots into --out from one row per cell (each
    metric's mean and `_sd` over its seeds), print the table.

    Returns:
        The exit code: 0 when every cell finished, 1 when some did not, 2 on a settings error.
    """
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        runs = with_seeds(cells, args.seeds)
        rows = run_grid(runs, Path(args.runs), budget)
    except UserError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    if not rows:
        print(f"{name}: error: no cell finished", file=sys.stderr)
        return 1
    per_seed = ["cell", "seed", "steps", "last_fifth_gain", "trained", "last_fifth_exact_gain", "exact_match_full"]
    per_seed.append("tokenizer_seconds")
    write_table(rows, per_seed, out / "results_by_seed.csv", out / "results_by_seed.md", f"{name}: every run", RULE)
    labels = {key for cell in runs for key in cell.labels} | {"steps"}  # a cell's seeds train as many steps
    metrics = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in labels and _numeric(rows, k)]
    report(aggregate(rows, metrics), out)
    print((out / "results.md").read_text())
    return 0 if len(rows) == len(runs) else 1


def _numeric(rows: list[dict], key: str) -> bool:
    values = [r[key] for r in rows if r.get(key) is not None]
    return bool(values) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
