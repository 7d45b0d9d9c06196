"""Two processes (torchrun, gloo, CPU) train like one process over the same global batch.

`accelerate launch --cpu --num_processes 2` starts a single process on a CPU-only machine
(LIBRARY-NOTES), so real two-process runs go through torchrun with ACCELERATE_USE_CPU=1.
The logged training loss is the mean over processes; each process averages its own tokens, so the two
runs differ by the mean-of-means vs token-mean gap and float reduction order: TOLERANCE bounds it.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from hiertok.cli import main

from .conftest import PLANNER_TOY, TOY

TOLERANCE = 0.02  # relative difference of the logged training loss at every logged step


def _records(run, split):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] == split]


def _torchrun(args: list[str], timeout: float = 600) -> None:
    # A run that hangs is stopped with SIGABRT, on which faulthandler prints every thread's stack: the failure
    # then shows where each process waited (a CI run once hung here after training had finished).
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.Popen(
        [*cmd, "-m", "hiertok.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGABRT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        pytest.fail(f"torchrun hung for {timeout} s; stdout:\n{out[-2000:]}\nstacks:\n{err[-12000:]}")
    assert proc.returncode == 0, err[-3000:]


def _compare(one, two):
    a, b = _records(one, "train"), _records(two, "train")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    worst = max(abs(x["loss"] - y["loss"]) / x["loss"] for x, y in zip(a, b))
    print(f"{two}: largest relative difference of the logged loss from one process: {worst:.2e}")
    assert worst < TOLERANCE, f"2-process loss differs from 1-process by {worst:.4f} (relative)"
    assert a[-1]["loss"] < a[0]["loss"] and b[-1]["loss"] < b[0]["loss"]
    return _records(two, "replicas")[-1]["max_abs_diff"]


@pytest.mark.parametrize("kind", ["fsq", "vq"])
def test_two_process_tokenizer_matches_one_process_and_replicas_agree(kind, tmp_path):
    quantizer = [] if kind == "fsq" else ["model.quantizer.kind=vq", "model.quantizer.codebook_sizes=[64]"]
    common = [*TOY, *quantizer, "train.eval_every=1000", "train.save_every=1000"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", "tokenizer", "--out", str(one), *common, "train.batch_size=32"]) == 0
    _torchrun(["train", "tokenizer", "--out", str(two), *common, "train.batch_size=16"])  # 2 x 16 = 32
    assert _compare(one, two) == 0.0  # parameters and VQ codebooks (buffers) identical on both processes


def test_two_process_planner_matches_one_process(toy_run, tmp_path):
    common = [f"tokenizer={toy_run}", *PLANNER_TOY, "train.eval_every=1000", "train.save_every=1000"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", "planner", "--out", str(one), *common, "train.batch_size=16"]) == 0
    _torchrun(["train", "planner", "--out", str(two), *common, "train.batch_size=8"])
    assert _compare(one, two) == 0.0
