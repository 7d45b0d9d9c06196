"""A planner run moved together with its tokenizer, or opened from another working directory, still loads."""

import os
import shutil
from pathlib import Path

import yaml

from hiertok.cli import main
from hiertok.pipeline import Pipeline

SKIP = shutil.ignore_patterns("checkpoints", "codes")
ARGS = ["--prompt", "Tom found a key.", "--sentences", "3", "--beams", "2"]


def _moved(toy_run: Path, toy_planner_run: Path, root: Path) -> Path:
    """Copies of both runs under `root`, laid out as the originals are relative to each other; the planner's
    recorded tokenizer path (as typed at training) points nowhere, as on another machine."""
    plan = root / "runs" / "plan"
    tok = (plan / os.path.relpath(toy_run, toy_planner_run)).resolve()
    shutil.copytree(toy_planner_run, plan, ignore=SKIP)
    shutil.copytree(toy_run, tok, ignore=SKIP)
    cfg = yaml.safe_load((plan / "config.yaml").read_text())
    cfg["tokenizer"] = "runs/elsewhere/tokenizer"
    (plan / "config.yaml").write_text(yaml.safe_dump(cfg))
    return plan


def test_a_moved_planner_run_finds_its_tokenizer_and_generates_the_same_text(
    toy_run, toy_planner_run, tmp_path, capsys, monkeypatch
):
    assert main(["generate", "--ckpt", str(toy_planner_run), *ARGS]) == 0
    here = capsys.readouterr().out
    plan = _moved(Path(toy_run), Path(toy_planner_run), tmp_path / "moved")
    monkeypatch.chdir(tmp_path)  # another working directory
    assert main(["generate", "--ckpt", str(plan), *ARGS]) == 0
    assert capsys.readouterr().out == here
    assert Pipeline.from_pretrained(plan).cfg.tokenizer != "runs/elsewhere/tokenizer"  # the one found is used
    other = tmp_path / "runs" / "elsewhere" / "tokenizer"  # the typed path now names another tokenizer from here
    shutil.copytree(toy_run, other, ignore=SKIP)
    with open(other / "tokenizer.json", "a") as f:
        f.write(" ")
    assert main(["generate", "--ckpt", str(plan), *ARGS]) == 0  # the one with the recorded hash is taken
    assert capsys.readouterr().out == here


def test_a_lost_tokenizer_is_named_with_the_way_out_and_tokenizer_overrides(toy_run, toy_planner_run, tmp_path, capsys):
    plan = tmp_path / "plan"
    shutil.copytree(toy_planner_run, plan, ignore=SKIP)
    cfg = yaml.safe_load((plan / "config.yaml").read_text())
    cfg["tokenizer"], cfg["tokenizer_from_run"] = "runs/elsewhere/tokenizer", "../nowhere"
    (plan / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["generate", "--ckpt", str(plan), *ARGS]) == 2
    err = capsys.readouterr().err
    assert "recorded in" in err and "runs/elsewhere/tokenizer" in err and "--tokenizer" in err
    assert main(["generate", "--ckpt", str(plan), "--tokenizer", str(toy_run), *ARGS]) == 0
    assert capsys.readouterr().out.startswith("Tom found a key.")
