"""Hostile input, round two (the CLI): flag values out of range whether or not they take effect, absurd sizes,
input files that are not what they look like, and misleading messages. Same case format as test_hostile.py."""

import io
import json
import os
import select
import subprocess
import sys
import threading

import pytest

from hiertok.cli import main
from hiertok.cli_io import ENCODE_BATCH_DOCS

from .cli_errors import error_line
from .test_hostile import run_case

G = ["generate", "--ckpt", "{plan}", "--prompt", "Hi."]
E = ["encode", "--ckpt", "{run}"]
D = ["decode", "--ckpt", "{run}"]

CASES = [
    # sampling settings: non-finite, overflowing, or out of range; checked with or without --sample
    ("temperature-nan", {}, [*G, "--sample", "--temperature", "nan"], ("error", "--temperature", "finite")),
    ("temperature-inf", {}, [*G, "--sample", "--temperature", "inf"], ("error", "--temperature", "finite")),
    ("temperature-huge", {}, [*G, "--sample", "--temperature", "1e39"], ("error", "--temperature", "must be in")),
    ("temperature-tiny", {}, [*G, "--sample", "--temperature", "1e-40"], ("error", "--temperature", "greedy")),
    ("temperature-negative-unused", {}, [*G, "--temperature", "-1"], ("error", "--temperature", "must be in")),
    ("top-k-negative-unused", {}, [*G, "--top-k", "-1"], ("error", "--top-k", ">= 0")),
    ("num-samples-zero-unused", {}, [*G, "--num-samples", "0"], ("error", "--num-samples", ">= 1")),
    ("top-p-nan", {}, [*G, "--top-p", "nan"], ("error", "--top-p", "finite")),
    ("diverse-groups-zero", {}, [*G, "--diverse-groups", "0"], ("error", "--diverse-groups", ">= 1")),
    # work without bounds is refused with its limit
    ("beams-10000", {}, [*G, "--beams", "10000"], ("error", "--beams", "<=")),
    ("sentences-10000", {}, [*G, "-n", "10000", "--no-end"], ("error", "--sentences", "<=")),
    ("samples-100000", {}, [*G, "--sample", "--num-samples", "100000"], ("error", "--num-samples", "<=")),
    ("seed-huge", {}, [*G, "--seed", str(10**23)], ("error", "--seed", "<=")),
    ("seed-negative", {}, [*G, "--seed", "-1"], ("error", "--seed", ">= 0")),
    # evaluation flags
    (
        "eval-planner-negative-beams",
        {},
        ["eval", "planner", "--ckpt", "{plan}", "--beams", "-7"],
        ("error", "--beams", ">= 1"),
    ),
    (
        "eval-tokenizer-zero-docs",
        {},
        ["eval", "tokenizer", "--ckpt", "{run}", "--max-docs", "0"],
        ("error", "--max-docs", ">= 1"),
    ),
    (
        "eval-out-is-a-directory",
        {"outdir/.keep": ""},
        ["eval", "tokenizer", "--ckpt", "{run}", "--out", "{tmp}/outdir"],
        ("error", "is a directory"),
    ),
    (
        "eval-tokenizer-dev-null",
        {},
        ["eval", "tokenizer", "--ckpt", "{run}", "--data", "/dev/null"],
        ("error", "not a regular file"),
    ),
    ("eval-planner-zero-prompts-ok", {}, ["eval", "planner", "--ckpt", "{plan}", "--prompts", "0"], ("ok", "bits")),
    # decode flags and codes
    (
        "decode-zero-levels",
        {"c.jsonl": '{"codes": [[0, 0]]}\n'},
        [*D, "--levels", "0", "{tmp}/c.jsonl"],
        ("error", "--levels", ">= 1"),
    ),
    (
        "decode-negative-passes",
        {"c.jsonl": '{"codes": [[0]]}\n'},
        [*D, "--passes", "-2", "{tmp}/c.jsonl"],
        ("error", "--passes", ">= 0"),
    ),
    ("decode-empty-idea", {"c.jsonl": '{"codes": [[]]}\n'}, [*D, "{tmp}/c.jsonl"], ("error", "line 1", "no codes")),
    (
        "decode-huge-code",
        {"c.jsonl": f'{{"codes": [[{10**30}]]}}\n'},
        [*D, "{tmp}/c.jsonl"],
        ("error", "line 1", "out of range"),
    ),
    # input files that are not what they look like
    ("encode-directory", {"d/.keep": ""}, [*E, "{tmp}/d"], ("error", "is a directory")),
    (
        "encode-jsonl-missing-text",
        {"a.jsonl": '{"text": "Tom ran."}\n{"title": "x"}\n'},
        [*E, "{tmp}/a.jsonl"],
        ("error", "line 2", 'string "text"'),
    ),
    (
        "encode-jsonl-number-text",
        {"a.jsonl": '{"text": 42}\n'},
        [*E, "{tmp}/a.jsonl"],
        ("error", "line 1", '"text" is a number'),
    ),
    (
        "encode-jsonl-null-text",
        {"a.jsonl": '{"text": "Tom ran."}\n{"text": null}\n'},
        [*E, "{tmp}/a.jsonl"],
        ("error", "line 2", '"text" is null'),
    ),
    (
        "encode-jsonl-broken-line",
        {"a.jsonl": '{"text": "Tom ran."}\n{"text": \n'},
        [*E, "{tmp}/a.jsonl"],
        ("error", "line 2", "not a json object"),
    ),
    ("encode-nul-only", {"n.txt": "\x00\x00\n"}, [*E, "{tmp}/n.txt"], ("error", "no text")),
    # misleading messages
    (
        "encode-with-planner-run",
        {"t.txt": "Tom ran.\n"},
        ["encode", "--ckpt", "{plan}", "{tmp}/t.txt"],
        ("error", "planner"),
    ),
    (
        "decode-with-planner-run",
        {"c.jsonl": '{"codes": [[0]]}\n'},
        ["decode", "--ckpt", "{plan}", "{tmp}/c.jsonl"],
        ("error", "not an idea tokenizer"),
    ),
    (
        "train-hub-dataset-offline",
        {},
        ["train", "tokenizer", "--out", "{tmp}/x", "data.source=nobody/no-such-dataset-hiertok"],
        ("error", "offline"),
    ),
]


@pytest.mark.parametrize("name, files, argv, expected", CASES, ids=[c[0] for c in CASES])
def test_hostile_flags_and_files(name, files, argv, expected, toy_run, toy_planner_run, tmp_path, capsys):
    run_case(files, argv, expected, toy_run, toy_planner_run, tmp_path, capsys)


@pytest.mark.parametrize("command", ["encode", "decode", "generate"])
def test_closed_stdin_is_one_line(command, toy_run, toy_planner_run, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", None)  # what Python makes of `<&-`
    ckpt = toy_planner_run if command == "generate" else toy_run
    assert main([command, "--ckpt", str(ckpt)]) == 2
    assert "standard input is closed" in error_line(capsys.readouterr().err)


def test_a_reader_that_leaves_ends_encode_quietly(toy_run, tmp_path, monkeypatch, capsys):
    (tmp_path / "in.txt").write_text("Tom ran home.\n" * 600)  # more than one batch of documents
    read, write = os.pipe()
    os.close(read)  # `| head -1` that has already gone
    monkeypatch.setattr(sys, "stdout", os.fdopen(write, "w"))
    assert main(["encode", "--ckpt", str(toy_run), str(tmp_path / "in.txt")]) == 141
    assert "error" not in capsys.readouterr().err


def test_encode_writes_codes_while_the_input_is_still_open(toy_run):
    """Streaming: a batch's codes come out before the input ends (the process would block forever otherwise)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "hiertok.cli", "encode", "--ckpt", str(toy_run)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        proc.stdin.write(b"Tom ran home. Mia sat down.\n" * (ENCODE_BATCH_DOCS + 1))
        proc.stdin.flush()  # the input stays open: only a streaming encoder can answer now
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "no output while the input was open"
        assert json.loads(proc.stdout.readline())["codes"]
    finally:
        proc.kill()
        proc.wait()


def test_dash_reads_standard_input(toy_run, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xef\xbb\xbfTom ran home.\r\n")))
    assert main(["encode", "--ckpt", str(toy_run), "-"]) == 0
    dash = json.loads(capsys.readouterr().out)["codes"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Tom ran home.\n")))
    assert main(["encode", "--ckpt", str(toy_run)]) == 0
    assert json.loads(capsys.readouterr().out)["codes"] == dash


def test_out_is_checked_before_the_work(toy_run, tmp_path, monkeypatch, capsys):
    import hiertok.evaluate

    def never(*args, **kwargs):
        raise AssertionError("the evaluation ran before --out was checked")

    monkeypatch.setattr(hiertok.evaluate, "evaluate_run", never)
    assert main(["eval", "tokenizer", "--ckpt", str(toy_run), "--out", str(tmp_path)]) == 2
    assert "--out" in error_line(capsys.readouterr().err)


def test_a_fifo_is_read_as_a_file(toy_run, tmp_path, capsys):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("Tom ran home.\n"))
    writer.start()
    assert main(["encode", "--ckpt", str(toy_run), str(fifo)]) == 0
    writer.join()
    assert json.loads(capsys.readouterr().out)["codes"]


def test_generate_decodes_only_the_plan_it_prints(toy_planner_run, monkeypatch, capsys):
    from hiertok.pipeline import Pipeline

    decoded = []
    expand = Pipeline.expand

    def spy(self, prompt_codes, plans, *args, **kwargs):
        decoded.append(sum(len(per) for per in plans))
        return expand(self, prompt_codes, plans, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "expand", spy)
    argv = ["generate", "--ckpt", str(toy_planner_run), "--prompt", "Hi.", "-n", "2", "--beams", "3"]
    assert main(argv) == 0 and decoded == [1]
    assert (
        main([*argv, "--json"]) == 0
        and decoded[-1] == len(json.loads(capsys.readouterr().out.splitlines()[-1])["plans"]) > 1
    )
