"""The flat baseline: windows score each token once, parameter matching, training, and the codelength eval."""

import json

import numpy as np
import pytest
import torch

from hiertok.cli import main
from hiertok.flat_lm import FlatLM, FlatLMConfig, TokenWindows, count_params, depth_for

from .cli_errors import error_line
from .runs import metrics

BASELINE_TOY = [
    "model.dim=32",
    "model.heads=2",
    "model.context=32",
    "train.batch_size=8",
    "train.max_steps=20",
    "train.eval_every=10",
    "train.save_every=10",
    "train.log_every=5",
    "train.eval_ideas=8",
    "train.warmup_steps=2",
    "train.progress=false",
]


@pytest.mark.parametrize("overlap", [False, True])
def test_windows_score_every_token_exactly_once(overlap):
    docs = [np.arange(n) + 100 for n in (3, 10, 33, 34, 80)]
    windows = TokenWindows.build(docs, context=8, overlap=overlap)
    scored = {d: [] for d in range(len(docs))}
    for i, d in enumerate(windows.rows[:, 0]):
        tokens, mask, score = windows.batch([i], pad_id=0)
        assert tokens.shape[1] <= 9 and bool(mask.all())
        scored[d] += tokens[0, 1:][score[0]].tolist()
    for d, ids in enumerate(docs):
        assert scored[d] == ids[1:].tolist()  # every token after the first, once, in order


def test_overlapping_windows_see_more_history_than_disjoint_ones():
    docs = [np.arange(40)]
    disjoint, overlapping = TokenWindows.build(docs, 8, False), TokenWindows.build(docs, 8, True)
    assert len(overlapping) > len(disjoint)
    assert overlapping.score_from[1:].min() == 4  # half a context of history before the first scored token


def test_depth_matches_a_parameter_target():
    cfg = FlatLMConfig(dim=32, heads=2, context=16)
    target = count_params(FlatLM(FlatLMConfig(dim=32, depth=5, heads=2, context=16), 100))
    assert depth_for(cfg, 100, target) == 5
    assert depth_for(cfg, 100, target + 10) == 5 and depth_for(cfg, 100, 1) == 1


@torch.no_grad()
def test_flat_lm_nll_is_the_log_probability_of_the_targets():
    torch.manual_seed(0)
    lm = FlatLM(FlatLMConfig(dim=16, depth=1, heads=2, context=8), 20).eval()
    tokens = torch.tensor([[1, 5, 7, 2, 0]])
    mask = torch.tensor([[True, True, True, True, False]])
    nll, tmask = lm(tokens, mask)
    logp = lm.net(tokens[:, :-1]).log_softmax(-1)
    expected = -(logp[0, 0, 5] + logp[0, 1, 7] + logp[0, 2, 2])
    assert tmask.tolist() == [[True, True, True, False]] and nll[0, 3] == 0
    assert float(nll.sum()) == pytest.approx(float(expected), abs=1e-4)


def test_matched_baseline_trains_and_codelength_adds_up(toy_run, toy_planner_run, tmp_path, capsys):
    flat = tmp_path / "flat"
    args = [
        "train",
        "baseline",
        "--out",
        str(flat),
        f"tokenizer={toy_run}",
        f"match={toy_planner_run}",
        "model.depth=0",
        *BASELINE_TOY,
    ]
    assert main(args) == 0
    capsys.readouterr()
    config = (flat / "config.yaml").read_text()
    assert "params_target:" in config and "depth: 0" not in config
    out = tmp_path / "bits.json"

    def codelength(max_docs: int) -> dict:
        args = ["--ckpt", str(toy_planner_run), "--baseline", str(flat), "--data", "synthetic"]
        assert main(["eval", "codelength", *args, "--max-docs", str(max_docs), "--out", str(out)]) == 0
        return json.loads(out.read_text())

    def last_train_record(run) -> dict:
        return metrics(run, "train")[-1]

    r = codelength(6)
    assert r["bpb_hier"] == pytest.approx(r["bpb_hier_codes"] + r["bpb_hier_tokens"])
    assert r["bpb_flat"] > 0 and r["bytes"] > 0 and r["docs"] == 6
    assert abs(r["params_flat"] - r["params_hier"]) < 0.5 * r["params_hier"]
    # The training budgets are the runs' optimizer-step seconds: tokenizer + planner against the baseline.
    assert r["train_s_flat"] == pytest.approx(last_train_record(flat)["train_s"], abs=0.1) and r["train_s_flat"] > 0
    hier_s = last_train_record(toy_run)["train_s"] + last_train_record(toy_planner_run)["train_s"]
    assert r["train_s_hier"] == pytest.approx(hier_s, abs=0.1)
    (flat / "metrics.jsonl").unlink()  # an unknown budget is reported as unknown, not as 0 s
    assert codelength(2)["train_s_flat"] is None
    assert main(["train", "baseline", "--out", str(tmp_path / "x"), f"tokenizer={toy_run}", "model.depth=0"]) == 2
    assert "match" in error_line(capsys.readouterr().err)
