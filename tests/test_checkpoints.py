"""Checkpoints keep the last `keep` complete ones (0: all), and a resumed run's metrics log drops what was written
after the checkpoint it restarts from (hiertok/training.py)."""

import pytest
import torch
from accelerate import Accelerator

from hiertok.training import Checkpoints, MetricsLog

from .runs import metrics


@pytest.fixture
def accelerator():
    acc = Accelerator(cpu=True)
    acc.prepare(torch.nn.Linear(2, 2))  # something to save
    return acc


@pytest.mark.parametrize("keep, left", [(2, [3, 4]), (1, [4]), (0, [1, 2, 3, 4])])
def test_only_the_last_checkpoints_are_kept(accelerator, tmp_path, keep, left):
    checkpoints = Checkpoints(accelerator, tmp_path, keep)
    for step in (1, 2, 3, 4):
        checkpoints.save(step)
    assert [int(p.name.removeprefix("step_")) for p in checkpoints.all()] == left
    assert not list((tmp_path / "checkpoints").glob(".tmp_*"))  # no half-written checkpoint left behind
    assert checkpoints.resume() == 4


def test_a_crashed_save_and_a_step_saved_again_are_replaced(accelerator, tmp_path):
    checkpoints = Checkpoints(accelerator, tmp_path, keep=2)
    stale = tmp_path / "checkpoints" / ".tmp_step_00000003"  # what a crash in the middle of saving step 3 leaves
    stale.mkdir(parents=True)
    (stale / "partial").write_text("x")
    checkpoints.save(3)
    checkpoints.save(3)  # the same step again (a resumed run that saves where it restarted)
    assert [p.name for p in checkpoints.all()] == ["step_00000003"]
    assert not stale.exists() and not (checkpoints.all()[0] / "partial").exists()


def test_only_complete_step_directories_count(accelerator, tmp_path):
    """A crash's temporary directory and stray files are not checkpoints; with none, training starts at step 0."""
    checkpoints = Checkpoints(accelerator, tmp_path, keep=2)
    assert checkpoints.resume() == 0  # no checkpoint directory yet
    root = tmp_path / "checkpoints"
    (root / ".tmp_step_00000009").mkdir(parents=True)  # a save that crashed
    (root / "step_notes.txt").write_text("not a checkpoint")
    (root / "step_00000004").mkdir()  # renamed into place, but its step.json never written
    assert [p.name for p in checkpoints.all()] == ["step_00000004"]
    assert checkpoints.resume() == 0
    checkpoints.save(5)
    assert [p.name for p in checkpoints.all()] == ["step_00000004", "step_00000005"] and checkpoints.resume() == 5


def test_a_checkpoint_that_cannot_be_loaded_names_the_cause(accelerator, tmp_path):
    from hiertok.training import RunDirError

    checkpoints = Checkpoints(accelerator, tmp_path, keep=2)
    broken = checkpoints.save(3)
    for f in broken.iterdir():
        if f.name != "step.json":
            f.write_bytes(b"garbage")
    with pytest.raises(Exception) as direct:
        accelerator.load_state(str(broken))
    with pytest.raises(RunDirError) as e:
        checkpoints.resume()
    assert str(e.value) == f"checkpoint {broken} cannot be loaded: {str(direct.value).splitlines()[0]}"


def test_pruning_tolerates_a_checkpoint_already_gone(accelerator, tmp_path, monkeypatch):
    """Another process (or a user) may remove an old checkpoint first: pruning must not stop the training."""
    checkpoints = Checkpoints(accelerator, tmp_path, keep=1)
    checkpoints.save(1)
    gone = tmp_path / "checkpoints" / "step_00000000"
    listed = Checkpoints.all
    monkeypatch.setattr(Checkpoints, "all", lambda self: [gone, *listed(self)])
    checkpoints.save(2)  # prunes step 0 (gone) and step 1
    assert [p.name for p in listed(checkpoints)] == ["step_00000002"]


def test_metrics_after_the_resumed_step_are_dropped(accelerator, tmp_path):
    log = MetricsLog(accelerator, tmp_path)
    for step in (10, 20, 30):
        log.log(step, "train", {"loss": 1.0 / step})
    log.log(20, "eval", {"recon": 0.5})  # same step as a train record: kept with it
    log.truncate_after(20)
    records = metrics(tmp_path)
    assert [(r["step"], r["split"]) for r in records] == [(10, "train"), (20, "train"), (20, "eval")]
    log.truncate_after(0)
    assert (tmp_path / "metrics.jsonl").read_text(encoding="utf-8") == ""
