"""`hiertok demo` runs the whole pipeline (at toy size here) and reuses finished runs."""

from hiertok.cli import main

from .cli_errors import error_line
from .conftest import PLANNER_TOY, TOY


def test_demo_runs_every_stage_and_reuses_finished_runs(tmp_path, capsys):
    # One decoding pass and one candidate: an untrained toy decoder would otherwise refine its plans for long.
    quick = ["planner.search.decode_passes=1", "planner.search.decode_candidates=1"]
    # A few held-out stories and prompts: the evaluations' figures are the slow tiny bars' business.
    few = ["--stories", "3", "--prompts", "3"]
    # Half the toy steps: the stages and the reuse are under test, not what they learn.
    short = ["train.max_steps=20", "planner.train.max_steps=15"]
    toy = [*TOY, *(f"planner.{o}" for o in PLANNER_TOY), *quick, *short]
    args = ["demo", "--out", str(tmp_path / "demo"), *few, *toy]
    assert main(args) == 0
    out = capsys.readouterr().out
    for step in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]", "grammar-valid", "toward the goal", "done:"):
        assert step in out, step
    assert (tmp_path / "demo" / "tokenizer" / "model.safetensors").is_file()
    assert (tmp_path / "demo" / "planner" / "model.safetensors").is_file()
    # Run again (one story and one prompt: the reuse is under test, not the figures): nothing is trained twice.
    assert main(["demo", "--out", str(tmp_path / "demo"), "--stories", "1", "--prompts", "1", *toy]) == 0
    assert capsys.readouterr().out.count("reusing the trained") == 2
    assert main(["demo", "--out", str(tmp_path / "demo"), "--prompts", "0"]) == 2
    assert "at least one" in error_line(capsys.readouterr().err)
