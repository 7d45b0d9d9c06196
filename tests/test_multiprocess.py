"""Two processes (torchrun, gloo, CPU) train like one process over the same global batch.

`accelerate launch --cpu --num_processes 2` starts a single process on a CPU-only machine
(accelerate 1.16), so real two-process runs go through torchrun with ACCELERATE_USE_CPU=1.
The logged training loss is the mean over processes; each process averages its own tokens, so the two
runs differ by the mean-of-means vs token-mean gap and float reduction order: TOLERANCE bounds it.
"""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from hiertok.cli import main

from .conftest import PLANNER_TOY, TOY
from .runs import metrics

TOLERANCE = 0.02  # relative difference of the logged training loss at every logged step
SEQUENCE = Path(__file__).with_name("cli_sequence.py")  # several commands in one launch


def _torchrun(commands: list[list[str]], logs, timeout: float = 600) -> None:
    """Run the `hiertok` COMMANDS one after another in two torchrun processes; fail (never hang) if they do not finish
    in `timeout` s.

    torchrun starts each worker in a session of its own, so killing torchrun's process group leaves the workers
    alive, and a pipe they inherited would never close (a CI run once hung here for over an hour). The output
    therefore goes to files, and on a timeout every descendant is sent SIGABRT (faulthandler prints each thread's
    stack into the log), then SIGKILL. The workers are signalled before torchrun, so that their stacks, the ones
    that tell why, come first.
    """
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    out_path, err_path = logs / "torchrun.out", logs / "torchrun.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        args = [a for command in commands for a in (";", *command)][1:]
        proc = subprocess.Popen([*cmd, str(SEQUENCE), *args], env=env, stdout=out, stderr=err)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            tree = []
            with contextlib.suppress(psutil.Error):  # torchrun may have ended just now
                parent = psutil.Process(proc.pid)
                tree = [*parent.children(recursive=True), parent]
            for sig in (signal.SIGABRT, signal.SIGKILL):
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        p.send_signal(sig)
                psutil.wait_procs(tree, timeout=30)
            proc.wait()
            lines = err_path.read_text().splitlines()
            stacks = "\n".join(line for line in lines if not line.startswith("Extension modules:"))[:12000]
            pytest.fail(f"torchrun hung for {timeout} s; stdout:\n{out_path.read_text()[-2000:]}\nstacks:\n{stacks}")
    assert proc.returncode == 0, err_path.read_text()[-3000:]


def _compare(one, two):
    """Compare the logged losses of the two-process run with the one-process run's over the steps it trained."""
    b = metrics(two, "train")
    a = [r for r in metrics(one, "train") if r["step"] <= b[-1]["step"]]
    assert [r["step"] for r in a] == [r["step"] for r in b]
    worst = max(abs(x["loss"] - y["loss"]) / x["loss"] for x, y in zip(a, b))
    print(f"{two}: largest relative difference of the logged loss from one process: {worst:.2e}")
    assert worst < TOLERANCE, f"2-process loss differs from 1-process by {worst:.4f} (relative)"
    assert a[-1]["loss"] < a[0]["loss"] and b[-1]["loss"] < b[0]["loss"]
    return metrics(two, "replicas")[-1]["max_abs_diff"]


# The two-process runs skip the periodic evaluations and checkpoints, which do not change the training (its logged
# losses are the same to the last digit), and stop half-way through the schedule (`train.stop_at_step`), so the
# session's one-process toy runs (TOY's and PLANNER_TOY's batches of 32 and 16) are their references over the steps
# they train, where the settings are otherwise the same.
NO_EVAL = ["train.eval_every=1000", "train.save_every=1000"]
HALF = ["train.stop_at_step=20"]  # of TOY's 40 steps (PLANNER_TOY's 30: 15)
VQ = ["model.quantizer.kind=vq", "model.quantizer.codebook_sizes=[64]"]


@pytest.fixture(scope="module")
def two_process_runs(toy_run, tmp_path_factory) -> Path:
    """The FSQ and VQ tokenizers and the planner, each trained by two processes (one torchrun launch for all three)."""
    root = tmp_path_factory.mktemp("two")
    _torchrun(
        [
            ["train", "tokenizer", "--out", str(root / "fsq"), *TOY, *NO_EVAL, *HALF, "train.batch_size=16"],  # 2 x 16
            ["train", "tokenizer", "--out", str(root / "vq"), *TOY, *VQ, *NO_EVAL, *HALF, "train.batch_size=16"],
            ["train", "planner", "--out", str(root / "planner"), f"tokenizer={toy_run}", *PLANNER_TOY, *NO_EVAL]
            + ["train.stop_at_step=15", "train.batch_size=8"],
        ],
        root,
    )
    return root


@pytest.mark.parametrize("kind", ["fsq", "vq"])
def test_two_process_tokenizer_matches_one_process_and_replicas_agree(kind, toy_run, two_process_runs, tmp_path):
    one = toy_run  # TOY is the FSQ run
    if kind == "vq":
        one = tmp_path / "one"
        assert main(["train", "tokenizer", "--out", str(one), *TOY, *VQ, *NO_EVAL, *HALF, "train.batch_size=32"]) == 0
    assert _compare(one, two_process_runs / kind) == 0.0  # parameters and VQ codebooks (buffers) identical on both


def test_two_process_planner_matches_one_process(toy_planner_run, two_process_runs):
    assert _compare(toy_planner_run, two_process_runs / "planner") == 0.0
