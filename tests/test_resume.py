"""Resuming a run from its checkpoint ends with the same weights and metrics as an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hiertok.cli import main
from hiertok.loop import PAUSE_ENV

from .conftest import PLANNER_TOY, TOY
from .runs import metrics, same_weights


def train_records(run):
    return [{k: v for k, v in r.items() if k not in ("time_s", "train_s")} for r in metrics(run, "train")]


def assert_resumed_at(step, run, before, out):
    """The second process started at `step` (it says so), and kept the first one's records up to it as
    written (a restart from step 0 would write them again, with its own wall-clock times)."""
    assert f"steps {step}.." in out and "steps 0.." not in out
    kept = [r for r in metrics(run) if r["step"] <= step]
    assert kept == [r for r in before if r["step"] <= step] and kept


def test_resume_is_exact(toy_run, tmp_path, capsys):
    split = tmp_path / "split"
    # Left unfinished at step 30 (checkpointed there), then resumed to the toy run's 40 steps.
    assert main(["train", "tokenizer", "--out", str(split), *TOY, "train.stop_at_step=30", "train.save_every=20"]) == 0
    assert not (split / "model.safetensors").exists()
    before = metrics(split)
    capsys.readouterr()
    assert main(["train", "tokenizer", "--out", str(split), "--resume", *TOY]) == 0
    assert_resumed_at(30, split, before, capsys.readouterr().out)
    assert same_weights(toy_run, split)

    assert train_records(split) == train_records(toy_run)
    # Training seconds continue across the resume (wall-clock time_s restarts with the process): a restart
    # from 0 would break the increase at step 35.
    seconds = [r["train_s"] for r in metrics(split, "train")]
    assert all(0 < a < b for a, b in zip(seconds, seconds[1:]))


def test_planner_resume_is_exact(toy_run, toy_planner_run, tmp_path, capsys):
    split = tmp_path / "plan"
    args = ["train", "planner", "--out", str(split), f"tokenizer={toy_run}", *PLANNER_TOY]
    assert main([*args, "train.stop_at_step=20"]) == 0  # checkpoints at 15 (save_every) and 20
    assert not (split / "model.safetensors").exists()
    before = metrics(split)
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert_resumed_at(20, split, before, capsys.readouterr().out)
    assert same_weights(toy_planner_run, split)


@pytest.mark.parametrize("stage", ["tokenizer", "planner"])
def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(stage, toy_run, toy_planner_run, tmp_path, capsys):
    """SIGKILL right after the first checkpoint lands; --resume must end where an uninterrupted run ends."""
    run, flag = tmp_path / "killed", tmp_path / "paused"
    if stage == "tokenizer":
        args, reference = ["train", "tokenizer", "--out", str(run), *TOY, "train.save_every=10"], toy_run
    else:
        args = ["train", "planner", "--out", str(run), f"tokenizer={toy_run}", *PLANNER_TOY, "train.save_every=5"]
        reference = toy_planner_run
    # The run pauses after its first checkpoint (a test hook), so the kill waits on the checkpoint, not on time.
    env = {**os.environ, PAUSE_ENV: str(flag)}  # the threads of the reference run, so the floats agree
    proc = subprocess.Popen([sys.executable, "-m", "hiertok.cli", *args], stderr=subprocess.DEVNULL, env=env)
    while not flag.exists():
        assert proc.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.01)
    step = int(flag.read_text())
    assert (run / "checkpoints" / f"step_{step:08d}" / "step.json").exists()
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (run / "model.safetensors").exists()
    before = metrics(run)
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert_resumed_at(step, run, before, capsys.readouterr().out)
    assert same_weights(reference, run)
    assert train_records(run) == train_records(reference)


def test_weights_are_written_atomically(tmp_path, monkeypatch):
    """A rename within the target's directory replaces the weights; a write that fails leaves the old file and
    no temporary file behind."""
    from safetensors.torch import load_file

    from hiertok import training

    target = tmp_path / "model.safetensors"
    training.save_weights(torch.nn.Linear(2, 2), target)
    moves, rename = [], os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (moves.append((Path(a), Path(b))), rename(a, b))[1])
    model = torch.nn.Linear(2, 2)
    training.save_weights(model, target)
    [(src, dst)] = moves
    assert src.parent == tmp_path and src.suffix == ".tmp" and dst == target
    assert torch.equal(load_file(target)["weight"], model.weight.detach())

    def fail(model, path):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(training, "save_model", fail)
    with pytest.raises(OSError, match="disk full"):
        training.save_weights(torch.nn.Linear(2, 2), target)
    assert torch.equal(load_file(target)["weight"], model.weight.detach())
    assert sorted(tmp_path.iterdir()) == [target]
