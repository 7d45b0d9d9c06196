"""Reading what a training run wrote: its metrics log and its weights."""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file


def metrics(run: Path, split: str | None = None) -> list[dict]:
    """The records of run/metrics.jsonl, in order (only those of `split` when given)."""
    rows = [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if split is None or r["split"] == split]


def same_weights(a: Path, b: Path) -> bool:
    """Whether two runs saved the same tensors, bit for bit (model.safetensors)."""
    x, y = load_file(Path(a) / "model.safetensors"), load_file(Path(b) / "model.safetensors")
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
