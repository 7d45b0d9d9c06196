"""A grid's cells over seeds: one row per cell with each metric's mean and standard deviation across its seeds."""

from __future__ import annotations

import math
from collections import defaultdict

PER_SEED = ("cell", "seed", "base_cell")


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


def aggregate(rows: list[dict], metrics: list[str]) -> list[dict]:
    """Rows of `with_seeds` cells (labelled `base_cell`) -> one row per base cell, in first-seen order.

    Each row keeps the cell's labels, `seeds` (how many finished), `trained` where the rows carry a verdict ("k/n":
    seeds whose tokenizer met the budget rule, `experiments.harness.ablation.trained_rule`), and for each metric
    its mean `m` and sample standard deviation `m_sd` (None for one seed, which has no spread to show; m None where
    no seed has the metric). Rows without `base_cell` are grouped by their `cell`.
    """
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row.get("base_cell", row["cell"])].append(row)
    out = []
    for name, group in groups.items():
        merged = {k: v for k, v in group[0].items() if k not in PER_SEED and k not in metrics}
        merged.update(cell=name, seeds=len(group))
        if any("trained" in r for r in group):  # training runs (not evaluations of given runs)
            verdicts = [r.get("trained") for r in group]
            merged["trained"] = f"{sum(v is True for v in verdicts)}/{len(group)}"
        for m in metrics:
            values = [float(r[m]) for r in group if _number(r.get(m))]
            if not values:
                merged[m] = merged[f"{m}_sd"] = None
                continue
            mean = sum(values) / len(values)
            sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
            merged[m], merged[f"{m}_sd"] = mean, sd
        out.append(merged)
    return out
