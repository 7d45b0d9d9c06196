"""Plots of ablation rows (matplotlib, written as PNG without a display)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)


def _usable(rows: list[dict], *keys: str) -> list[dict]:
    return [r for r in rows if all(r.get(k) is not None for k in keys)]


def line_plot(rows: list[dict], x: str, y: str, group: list[str], path: Path, title: str, logx: bool = False) -> None:
    """One line per value of the `group` columns, points sorted by `x`; error bars where rows have `y`'s `_sd`
    (seed-aggregated rows, `harness.seeds.aggregate`).

    Args:
        rows: result rows.
        x, y: column names of the axes.
        group: columns whose values name a line (e.g. ["kind", "hierarchy"]).
        path: PNG to write.
        title: figure title.
        logx: logarithmic x axis (codebook sizes).
    """
    lines: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for r in _usable(rows, x, y):
        lines[" ".join(str(r[g]) for g in group)].append((float(r[x]), float(r[y]), float(r.get(f"{y}_sd") or 0.0)))
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, points) in enumerate(sorted(lines.items())):
        points.sort()
        k = i // 10 % 3  # the colour cycle has 10 colours: later lines change line style and marker
        xs, ys, sds = ([p[j] for p in points] for j in range(3))
        style = dict(marker="os^"[k], linestyle=("-", "--", ":")[k], label=name)
        if any(sds):
            ax.errorbar(xs, ys, yerr=sds, capsize=3, **style)
        else:
            ax.plot(xs, ys, **style)
    if logx:
        ax.set_xscale("log", base=2)
    ax.set(xlabel=x, ylabel=y, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def bpb_bars(rows: list[dict], path: Path, title: str) -> None:
    """Total bits per byte per cell, stacked as code bits + token bits."""
    rows = _usable(rows, "bpb_hier_codes", "bpb_hier_tokens")
    names = [r["cell"] for r in rows]
    codes = [r["bpb_hier_codes"] for r in rows]
    tokens = [r["bpb_hier_tokens"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(rows)), 4))
    ax.bar(names, codes, label="planner (codes)")
    ax.bar(names, tokens, bottom=codes, label="decoder (tokens given codes)")
    ax.set(ylabel="bits per byte", title=title)
    ax.tick_params(axis="x", rotation=70, labelsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def utilization_plot(rows: list[dict], path: Path, title: str) -> None:
    """Fraction of each level's codes used on held-out ideas, one line per cell."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in _usable(rows, "utilization_by_level"):
        util = json.loads(r["utilization_by_level"])
        levels = sorted(int(k) for k in util)
        ax.plot(levels, [util[str(k)] for k in levels], marker=".", label=r["cell"])
    ax.set(xlabel="level", ylabel="codes used (fraction)", title=title, ylim=(0, 1.05))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def metric_bars(rows: list[dict], metrics: list[str], path: Path, title: str) -> None:
    """Grouped bars: for each cell, one bar per metric (metrics on comparable 0..1 scales), with error bars where
    rows have the metric's `_sd` (seed-aggregated rows)."""
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows)), 4))
    width = 0.8 / len(metrics)
    for j, metric in enumerate(metrics):
        xs = [i + j * width for i, r in enumerate(rows) if r.get(metric) is not None]
        ys = [r[metric] for r in rows if r.get(metric) is not None]
        sds = [r.get(f"{metric}_sd") or 0.0 for r in rows if r.get(metric) is not None]
        ax.bar(xs, ys, width=width, label=metric, yerr=sds if any(sds) else None, capsize=2)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], [r["cell"] for r in rows], rotation=45, ha="right")
    ax.set(title=title, ylim=(0, 1.05))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
