"""The ablation harness: cells train through the CLI, finished cells are skipped, interrupted ones resume,
and the experiment scripts write their tables and plots."""

import argparse
import csv
import dataclasses
import json
from pathlib import Path

import pytest

from experiments.harness.ablation import (
    RULE,
    Budget,
    Cell,
    run_cell,
    run_grid,
    train_stage,
    trained_rule,
    with_seeds,
    write_table,
)
from experiments.harness.ablation_cli import run_and_report
from experiments.harness.seeds import aggregate
from tests.conftest import PLANNER_TOY, TOY

from .cli_errors import error_line
from .experiment_scripts import load_script
from .runs import metrics


def _budget() -> Budget:
    """The toy stages at half their steps: the harness is under test, not what the cells learn."""
    toy = [o for o in TOY if not o.startswith("model.quantizer.levels")]
    half = ["train.max_steps=20", "train.eval_every=10", "train.save_every=10"]
    return Budget(
        tokenizer_config=None,
        planner_config=None,
        eval_docs=12,
        tokenizer_overrides=[*toy, *half],
        planner_overrides=[*PLANNER_TOY, "train.max_steps=16", "train.eval_every=8", "train.save_every=8"],
    )


def test_grid_cells_train_evaluate_skip_and_resume(tmp_path):
    budget = _budget()
    cells = [
        Cell("fsq", ["model.quantizer.levels=2", "model.quantizer.codebook_sizes=[64]"], {"kind": "fsq"}),
        Cell("vq", ["model.quantizer.levels=2", "model.quantizer.kind=vq", "model.quantizer.codebook_sizes=[16]"]),
    ]
    # Interrupt the second cell's tokenizer half-way: the grid must resume it, not start over.
    train_stage(
        "tokenizer",
        None,
        tmp_path / "vq" / "tokenizer",
        [*budget.tokenizer_overrides, *cells[1].tokenizer_overrides, "train.stop_at_step=10"],
    )
    assert not (tmp_path / "vq" / "tokenizer" / "model.safetensors").exists()
    rows = run_grid(cells, tmp_path, budget)
    assert [r["cell"] for r in rows] == ["fsq", "vq"] and rows[0]["kind"] == "fsq"
    for row in rows:
        assert row["code_bits"] > 0 and 0 <= row["exact_match_full"] <= 1
        assert row["planner_bits_per_idea"] > 0 and row["bpb_hier"] > row["bpb_hier_codes"] > 0
        assert len(json.loads(row["utilization_by_level"])) == 2
    steps = [r["step"] for r in metrics(tmp_path / "vq" / "tokenizer")]
    assert steps == sorted(steps) and steps[-1] == 20  # one continuous run: 10 steps, then resumed to 20
    # A finished cell is read back, not retrained.
    weights = tmp_path / "fsq" / "tokenizer" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert run_cell(cells[0], tmp_path, budget) == rows[0]
    assert weights.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="other settings"):  # never reuse a cell under another budget
        run_cell(cells[0], tmp_path, dataclasses.replace(budget, eval_docs=5))

    write_table(rows, ["cell", "code_bits", "bpb_hier"], tmp_path / "r.csv", tmp_path / "r.md", "t")
    md = (tmp_path / "r.md").read_text().splitlines()
    assert md[2] == "| cell | code_bits | bpb_hier |" and md[4].startswith("| fsq | 12.000 |")
    codebooks = load_script("ablate_codebooks")
    codebooks.plot(
        [dict(r, hierarchy="matryoshka", levels=2, codebook_size=64, kind=r["cell"]) for r in rows], tmp_path
    )
    assert {p.name for p in tmp_path.glob("*.png")} >= {
        "exact_match_vs_bits.png",
        "bpb_by_cell.png",
        "utilization_by_level.png",
    }


def test_codebook_layouts():
    codebooks = load_script("ablate_codebooks")
    assert codebooks.parse_layout("1x256+3x1024") == [256, 1024, 1024, 1024]
    with pytest.raises(ValueError, match="LEVELSxSIZE"):
        codebooks.parse_layout("4by256")
    cells = codebooks.grid(["fsq", "lfq", "vq"], ["matryoshka", "residual"], ["4x256", "1x256+3x1000"])
    names = [c.name for c in cells]
    assert "fsq-residual-4x256" in names and "lfq-matryoshka-4x256" in names
    assert "fsq-residual-1x256+3x1000" not in names  # residual shares one size
    assert "lfq-matryoshka-1x256+3x1000" not in names  # LFQ needs powers of two
    vq = next(c for c in cells if c.name == "vq-matryoshka-1x256+3x1000")
    assert "model.quantizer.codebook_sizes=[256,1000]" in vq.tokenizer_overrides
    assert codebooks.main(["--runs", "unused", "--out", "unused", "--layouts", "4by256"]) == 2


def test_loss_script_rejects_unknown_cells(capsys):
    assert load_script("ablate_losses").main(["--runs", "unused", "--out", "unused", "--cells", "recon,nope"]) == 2
    assert "unknown cell 'nope'" in error_line(capsys.readouterr().err, "ablate_losses")
    missing = {"nope": "configs/tokenizer/nope.yaml", "tiny-recon": "configs/planner/tiny-recon.yaml"}
    for name in ("ablate_losses", "ablate_codebooks"):  # a base config that does not exist, or has no planner
        for base, path in missing.items():
            assert load_script(name).main(["--runs", "unused", "--out", "unused", "--base-configs", base]) == 2
            assert f"no {path}" in error_line(capsys.readouterr().err, name)


def test_tinystories_seeds_redoes_an_evaluation_of_another_candidate_count(tmp_path, monkeypatch):
    """`tinystories_seeds.py --decode-candidates N` hands N to `eval planner`, redoes an evaluation that ran with
    another count and reuses one that ran with N (the stages and the CLI are stood in for: the reuse is under test)."""
    seeds = load_script("tinystories_seeds")
    calls: list[list[str]] = []

    def fake_cli(argv: list[str]) -> int:
        calls.append(argv)
        out = Path(argv[argv.index("--out") + 1])
        given = argv[argv.index("--decode-candidates") + 1] if "--decode-candidates" in argv else "4"
        if argv[1] == "codelength":
            out.write_text(json.dumps({k: 1.0 for k in seeds.CODELENGTH}))
        else:
            flat = {"name_carryover": 0.1, "examples": []}
            record = {"name_carryover": 0.7, "plan_adherence_level1": 0.9, "decode_candidates": int(given)}
            out.write_text(json.dumps({**record, "flat": flat, "examples": []}))
        return 0

    monkeypatch.setattr(seeds, "train_stage", lambda *a, **k: None)
    monkeypatch.setattr(seeds, "cli", fake_cli)
    (tmp_path / "s0").mkdir()
    row = seeds.run_seed(0, tmp_path, [], [], prompts=5)  # the run's own count: none asked for
    assert [c[1] for c in calls] == ["codelength", "planner"] and "--decode-candidates" not in calls[1]
    assert row["decode_candidates"] == 4
    calls.clear()
    assert seeds.run_seed(0, tmp_path, [], [], prompts=5, candidates=4)["decode_candidates"] == 4
    assert calls == []  # the same count: both evaluations reused
    row = seeds.run_seed(0, tmp_path, [], [], prompts=5, candidates=16)
    assert [c[1] for c in calls] == ["planner"] and calls[0][calls[0].index("--decode-candidates") + 1] == "16"
    assert row["decode_candidates"] == 16
    calls.clear()
    seeds.run_seed(0, tmp_path, [], [], prompts=0, candidates=4)  # no generations asked: the last ones are read
    assert calls == []


def test_seeds_name_cells_and_train_each_stage_with_its_seed():
    cells = with_seeds([Cell("fsq", ["a=1"], {"kind": "fsq"}, ["b=2"])], 2)
    assert [c.name for c in cells] == ["fsq-s0", "fsq-s1"]
    assert cells[1].tokenizer_overrides == ["a=1", "train.seed=1"] and cells[1].planner_overrides == [
        "b=2",
        "train.seed=1",
    ]
    assert cells[1].labels == {"kind": "fsq", "base_cell": "fsq", "seed": 1}
    with pytest.raises(ValueError, match="--seeds"):
        with_seeds(cells, 0)


def test_aggregate_gives_mean_and_sample_sd_per_cell():
    rows = [
        {"cell": "a-s0", "base_cell": "a", "seed": 0, "kind": "fsq", "x": 1.0, "trained": True},
        {"cell": "a-s1", "base_cell": "a", "seed": 1, "kind": "fsq", "x": 3.0, "trained": False},
        {"cell": "b-s0", "base_cell": "b", "seed": 0, "kind": "vq", "x": None, "trained": None},
    ]
    a, b = aggregate(rows, ["x"])
    assert a["cell"] == "a" and a["kind"] == "fsq" and a["seeds"] == 2 and a["trained"] == "1/2"
    assert a["x"] == 2.0 and a["x_sd"] == pytest.approx(2**0.5)
    assert b["x"] is None and b["trained"] == "0/1" and "seed" not in a


def test_trained_rule_reads_the_last_fifth_of_held_out_checks(tmp_path):
    def write(losses):
        lines = [
            json.dumps({"step": 20 * (i + 1), "split": "eval", "recon": v, "exact_match_k1": 0.0, "exact_match_k16": v})
            for i, v in enumerate(losses)
        ]
        (tmp_path / "metrics.jsonl").write_text("\n".join([json.dumps({"step": 5, "split": "train"}), *lines]) + "\n")
        return trained_rule(tmp_path)

    still_falling = write([2.0, 1.5, 1.2, 1.0, 0.9])  # 0.9 against 1.0 at step 80 of 100: 10% gain
    assert still_falling == {
        "steps": 100,
        "last_fifth_gain": pytest.approx(0.1),
        "trained": False,
        "last_fifth_exact_gain": pytest.approx(-0.1),  # exact match at full depth (k16, not k1): 0.9 - 1.0
    }
    assert write([2.0, 1.5, 1.2, 1.0, 0.995])["trained"] is True
    assert write([1.0])["trained"] is None  # no check before the last fifth: no verdict


def test_tokenizer_only_grid_over_seeds_reports_mean_and_sd(tmp_path):
    budget = dataclasses.replace(_budget(), planner=False, planner_overrides=[])
    cells = [Cell("fsq", ["model.quantizer.levels=2", "model.quantizer.codebook_sizes=[64]"], {"kind": "fsq"})]
    args = argparse.Namespace(out=str(tmp_path / "out"), runs=str(tmp_path / "runs"), seeds=2)
    seen = []

    def report(rows, out):
        seen.extend(rows)
        write_table(rows, ["cell", "exact_match_full", "trained"], out / "results.csv", out / "results.md", "t", RULE)

    assert run_and_report("grid", cells, args, budget, report) == 0
    assert not (tmp_path / "runs" / "fsq-s0" / "planner").exists()
    (row,) = seen
    assert row["seeds"] == 2 and "exact_match_full_sd" in row and row["code_bits"] > 0
    with (tmp_path / "out" / "results_by_seed.csv").open() as f:
        runs = list(csv.DictReader(f))
    assert [(r["cell"], r["steps"]) for r in runs] == [("fsq-s0", "20"), ("fsq-s1", "20")]
    assert all(r["trained"] in ("True", "False") and r["exact_match_full"] for r in runs)
    assert "±" in (tmp_path / "out" / "results.md").read_text()
