"""Resuming a run from its checkpoint ends with the same weights and metrics as an uninterrupted run."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from hiertok.cli import main

from .conftest import PLANNER_TOY, TOY


def train_records(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time_s", "train_s")} for r in rows if r["split"] == "train"]


def test_resume_is_exact(toy_run, tmp_path):
    split = tmp_path / "split"
    # Left unfinished at step 30 (checkpointed there), then resumed to the toy run's 40 steps.
    assert main(["train", "tokenizer", "--out", str(split), *TOY, "train.stop_at_step=30", "train.save_every=20"]) == 0
    assert not (split / "model.safetensors").exists()
    assert main(["train", "tokenizer", "--out", str(split), "--resume", *TOY]) == 0
    a, b = load_file(toy_run / "model.safetensors"), load_file(split / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)

    assert train_records(split) == train_records(toy_run)
    # Training seconds continue across the resume (wall-clock time_s restarts with the process): a restart
    # from 0 would break the increase at step 35.
    rows = [json.loads(line) for line in (split / "metrics.jsonl").read_text().splitlines()]
    seconds = [r["train_s"] for r in rows if r["split"] == "train"]
    assert all(0 < a < b for a, b in zip(seconds, seconds[1:]))


def test_planner_resume_is_exact(toy_run, toy_planner_run, tmp_path):
    split = tmp_path / "plan"
    args = ["train", "planner", "--out", str(split), f"tokenizer={toy_run}", *PLANNER_TOY]
    assert main([*args, "train.stop_at_step=20"]) == 0  # checkpoints at 15 (save_every) and 20
    assert not (split / "model.safetensors").exists()
    assert main([*args, "--resume"]) == 0
    a, b = load_file(toy_planner_run / "model.safetensors"), load_file(split / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("stage", ["tokenizer", "planner"])
def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(stage, toy_run, toy_planner_run, tmp_path):
    """SIGKILL right after the first checkpoint lands; --resume must end where an uninterrupted run ends."""
    run = tmp_path / "killed"
    if stage == "tokenizer":
        args, reference = ["train", "tokenizer", "--out", str(run), *TOY, "train.save_every=10"], toy_run
    else:
        args = ["train", "planner", "--out", str(run), f"tokenizer={toy_run}", *PLANNER_TOY, "train.save_every=5"]
        reference = toy_planner_run
    proc = subprocess.Popen([sys.executable, "-m", "hiertok.cli", *args], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((run / "checkpoints").glob("step_*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (run / "model.safetensors").exists()
    assert main([*args, "--resume"]) == 0
    a, b = load_file(reference / "model.safetensors"), load_file(run / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert train_records(run) == train_records(reference)
