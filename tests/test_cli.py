"""The `hiertok` command line through `main([...])`: train, eval, encode, decode, and one-line errors."""

import json

import pytest

from hiertok.cli import main
from hiertok.data.synthetic import StoryWorld

from .cli_errors import error_line
from .conftest import TOY
from .runs import metrics


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_encode_decode_round_trip_through_files(toy_run, tmp_path, capsys):
    stories = StoryWorld().generate(2, seed=4242)
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"text": s.text}) + "\n" for s in stories))
    code, out, _ = run(capsys, "encode", "--ckpt", str(toy_run), str(src))
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [len(r["codes"]) for r in lines] == [len(s.sentences) for s in stories]
    assert all(len(idea) == 4 for r in lines for idea in r["codes"])
    codes_file = tmp_path / "codes.jsonl"
    codes_file.write_text(out)
    code, out, _ = run(capsys, "decode", "--ckpt", str(toy_run), str(codes_file), "--json", "--levels", "2")
    assert code == 0
    assert len([json.loads(line)["text"] for line in out.splitlines()]) == 2


def test_eval_writes_json(toy_run, tmp_path, capsys):
    out_file = tmp_path / "eval" / "tok.json"
    code, _, _ = run(
        capsys,
        "eval",
        "tokenizer",
        "--ckpt",
        str(toy_run),
        "--data",
        "synthetic",
        "--max-docs",
        "5",
        "--out",
        str(out_file),
    )
    assert code == 0
    result = json.loads(out_file.read_text())
    assert set(result["exact_match_by_prefix"]) == {"1", "2", "3", "4"}


def test_resume_extends_a_finished_run(toy_run, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "resumed"
    shutil.copytree(toy_run, run_dir)
    code, out, _ = run(capsys, "train", "tokenizer", "--out", str(run_dir), "--resume", *TOY, "train.max_steps=45")
    assert code == 0 and json.loads(out.splitlines()[-1])["steps"] == 45
    steps = [r["step"] for r in metrics(run_dir)]
    assert steps == sorted(steps) and steps[-1] == 45


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "tokenizer", "--out", "{run}"], "already holds a run"),
        (["train", "tokenizer", "--out", "{tmp}/x", "train.nope=1"], "nope"),
        (["train", "tokenizer", "--out", "{tmp}/x", "train.lr=abc"], "train.lr"),
        (["train", "tokenizer", "--out", "{tmp}/x", "--config", "{tmp}/missing.yaml"], "not found"),
        (["train", "tokenizer", "--out", "{tmp}/x", "data.source={tmp}/missing.txt"], "missing.txt"),
        (["eval", "tokenizer", "--ckpt", "{tmp}/nothing"], "not found"),
        (["encode", "--ckpt", "{run}", "{tmp}/missing.txt"], "no such file"),
        (["decode", "--ckpt", "{run}", "{tmp}/bad.jsonl"], "line 1"),
        (["decode", "--ckpt", "{run}", "{tmp}/range.jsonl"], "out of range"),
        (["decode", "--ckpt", "{run}", "{tmp}/range.jsonl", "--levels", "9"], "levels"),
    ],
)
def test_errors_are_one_line_with_exit_2(toy_run, tmp_path, capsys, argv, fragment):
    (tmp_path / "bad.jsonl").write_text("not json\n")
    (tmp_path / "range.jsonl").write_text(json.dumps({"codes": [[0, 0, 0, 99999]]}) + "\n")
    argv = [a.format(run=toy_run, tmp=tmp_path) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert fragment.lower() in error_line(err), err


def test_version(capsys):
    import hiertok
    from hiertok.cli import main as cli_main

    with pytest.raises(SystemExit) as e:
        cli_main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"hiertok {hiertok.__version__}"


def test_debug_shows_the_traceback_of_a_one_line_error(tmp_path, capsys):
    from hiertok.cli import main as cli_main

    missing = str(tmp_path / "no-run")
    assert cli_main(["encode", "--ckpt", missing]) == 2
    assert capsys.readouterr().err.startswith("hiertok: error: ")
    with pytest.raises(FileNotFoundError):
        cli_main(["--debug", "encode", "--ckpt", missing])


@pytest.mark.parametrize("bug", [ValueError("an index off by one"), KeyError("codes"), RuntimeError("shape mismatch")])
def test_a_bug_shows_its_traceback_not_a_user_error_line(monkeypatch, capsys, bug):
    """Only `UserError` (bad input) and OSError become one line: a plain ValueError from inside is a bug."""
    import hiertok.cli as cli

    def broken(args):
        raise bug

    monkeypatch.setattr(cli, "_dispatch", broken)
    with pytest.raises(type(bug)):
        cli.main(["config", "show", "tokenizer/tiny"])
    assert "hiertok: error:" not in capsys.readouterr().err


def test_a_user_error_from_inside_is_one_line(monkeypatch, capsys):
    import hiertok.cli as cli
    from hiertok.errors import UserError

    def refuses(args):
        raise UserError("--beams must be <= 256, got 999\nsecond line")

    monkeypatch.setattr(cli, "_dispatch", refuses)
    assert cli.main(["config", "show", "tokenizer/tiny"]) == 2
    assert error_line(capsys.readouterr().err) == "hiertok: error: --beams must be <= 256, got 999"
