"""The command line the ablation scripts share: budget options, and running a grid into tables and plots."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from hiertok.errors import UserError

from .ablation import Budget, Cell, run_grid


def add_grid_arguments(p: argparse.ArgumentParser, name: str, tiny_steps: int) -> None:
    """The options every ablation script takes: where cells and results go, data, budgets, evaluation."""
    p.add_argument("--runs", default=f"runs/{name}", help="the cells' run directories")
    p.add_argument("--out", default=f"experiments/results/{name}", help="results.csv/md, plots")
    p.add_argument("--data", default=None, help="text source (default: the synthetic world); implies small configs")
    p.add_argument("--base-configs", default=None, help="tiny | small | base (default: tiny, small with --data)")
    for stage in ("tokenizer", "planner"):
        p.add_argument(
            f"--{stage}-steps", type=int, default=None, help=f"default: {tiny_steps} on tiny, the config's otherwise"
        )
    p.add_argument("--eval-docs", type=int, default=100, help="held-out documents per evaluation")
    p.add_argument("--prompts", type=int, default=0, help="generations per planner evaluation (0: none)")


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
    budget = Budget(
        tokenizer_config=str(configs / "tokenizer" / f"{base}.yaml"),
        planner_config=str(configs / "planner" / f"{base}.yaml"),
        data=args.data,
        tokenizer_steps=args.tokenizer_steps or default_steps,
        planner_steps=args.planner_steps or default_steps,
        eval_docs=args.eval_docs,
        prompts=args.prompts,
        tokenizer_overrides=tokenizer_overrides,
    )
    return budget, base


def run_and_report(
    name: str, cells: list[Cell], args: argparse.Namespace, budget: Budget, report: Callable[[list[dict], Path], None]
) -> int:
    """Run the grid, let `report` write results.csv/md and plots into --out, print the table.

    Returns:
        The exit code: 0 when every cell finished, 1 when some did not, 2 on a settings error.
    """
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        rows = run_grid(cells, Path(args.runs), budget)
    except UserError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    if not rows:
        print(f"{name}: error: no cell finished", file=sys.stderr)
        return 1
    report(rows, out)
    print((out / "results.md").read_text())
    return 0 if len(rows) == len(cells) else 1
