"""Resuming a run from its checkpoint ends with the same weights and metrics as an uninterrupted run."""

import json

import torch
from safetensors.torch import load_file

from hiertok.cli import main

from .conftest import PLANNER_TOY, TOY


def test_resume_is_exact(toy_run, tmp_path):
    split = tmp_path / "split"
    # Left unfinished at step 30 (checkpointed there), then resumed to the toy run's 40 steps.
    assert main(["train", "tokenizer", "--out", str(split), *TOY, "train.stop_at_step=30", "train.save_every=20"]) == 0
    assert not (split / "model.safetensors").exists()
    assert main(["train", "tokenizer", "--out", str(split), "--resume", *TOY]) == 0
    a, b = load_file(toy_run / "model.safetensors"), load_file(split / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)

    def train_records(run):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "time_s"} for r in rows if r["split"] == "train"]

    assert train_records(split) == train_records(toy_run)


def test_planner_resume_is_exact(toy_run, toy_planner_run, tmp_path):
    split = tmp_path / "plan"
    args = ["train", "planner", "--out", str(split), f"tokenizer={toy_run}", *PLANNER_TOY]
    assert main([*args, "train.stop_at_step=20"]) == 0  # checkpoints at 15 (save_every) and 20
    assert not (split / "model.safetensors").exists()
    assert main([*args, "--resume"]) == 0
    a, b = load_file(toy_planner_run / "model.safetensors"), load_file(split / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
