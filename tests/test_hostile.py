"""Hostile input to every command: each case ends in a documented handling (exit 0) or one error line (exit 2).

A case is (id, files to create, argv, expected): `expected` is ("ok", text the output must contain),
("continues", the prompt): generate's JSON keeps the prompt as given and writes the asked number of
non-empty new ideas after it, or ("error", fragments the single `hiertok: error:` line must contain, at
least one of them words of the message, not of the arguments). `{run}`, `{plan}` and `{tmp}` in argv are
the toy tokenizer run, the toy planner run and the test's temporary directory.
"""

import json
import re
import shutil

import pytest

from hiertok.cli import main

from .cli_errors import error_line

LONG = "word " * 200_000  # a 1 MB "sentence" with no punctuation (split losslessly: test_a_1mb_sentence_...)
# Through the CLI, a fifth of it: about 1,000 capped ideas, encoded in two batches of 512 as 5,000 would be in ten.
LONG_LINE = LONG[: len(LONG) // 5]
MIXED = "Tom 😀 fand einen Schlüssel. 猫が好きです。 שלום עולם. tab\there\x07bell\x1b[31mred.\n"


def _corrupt(path):
    path.write_bytes(path.read_bytes()[:100])


CASES = [
    # encode: input text
    ("encode-empty-file", {"empty.txt": ""}, ["encode", "--ckpt", "{run}", "{tmp}/empty.txt"], ("error", "no text")),
    ("encode-whitespace", {"ws.txt": "  \n\t\n"}, ["encode", "--ckpt", "{run}", "{tmp}/ws.txt"], ("error", "no text")),
    (
        "encode-invalid-utf8",
        {"bad.txt": b"ok \xff\xfe bytes\n"},
        ["encode", "--ckpt", "{run}", "{tmp}/bad.txt"],
        ("error", "bad.txt", "line 1", "not valid UTF-8"),
    ),
    (
        "encode-emoji-cjk-rtl-control",
        {"mixed.txt": MIXED},
        ["encode", "--ckpt", "{run}", "{tmp}/mixed.txt"],
        ("ok", '"codes"'),
    ),
    (
        "encode-200kb-sentence",
        {"long.txt": LONG_LINE},
        ["encode", "--ckpt", "{run}", "{tmp}/long.txt"],
        ("ok", '"codes"'),
    ),
    ("encode-missing-file", {}, ["encode", "--ckpt", "{run}", "{tmp}/nope.txt"], ("error", "no such file", "nope.txt")),
    ("encode-not-a-run", {}, ["encode", "--ckpt", "{tmp}", "{tmp}/nope.txt"], ("error", "not found")),
    # decode: codes
    (
        "decode-out-of-range",
        {"c.jsonl": '{"codes": [[0, 0, 0, 99999]]}\n'},
        ["decode", "--ckpt", "{run}", "{tmp}/c.jsonl"],
        ("error", "out of range"),
    ),
    (
        "decode-negative",
        {"c.jsonl": '{"codes": [[0, -1, 0, 0]]}\n'},
        ["decode", "--ckpt", "{run}", "{tmp}/c.jsonl"],
        ("error", "out of range"),
    ),
    (
        "decode-too-many-levels",
        {"c.jsonl": '{"codes": [[0, 0, 0, 0, 0, 0]]}\n'},
        ["decode", "--ckpt", "{run}", "{tmp}/c.jsonl"],
        ("error", "levels"),
    ),
    (
        "decode-ragged-levels",
        {"c.jsonl": '{"codes": [[0, 0], [0, 0, 0]]}\n'},
        ["decode", "--ckpt", "{run}", "{tmp}/c.jsonl"],
        ("error", "different numbers of levels"),
    ),
    (
        "decode-not-numbers",
        {"c.jsonl": '{"codes": [["a", 0]]}\n'},
        ["decode", "--ckpt", "{run}", "{tmp}/c.jsonl"],
        ("error", "line 1"),
    ),
    ("decode-empty", {"c.jsonl": ""}, ["decode", "--ckpt", "{run}", "{tmp}/c.jsonl"], ("error", "no codes")),
    # generate: prompts and settings
    ("generate-empty-prompt", {}, ["generate", "--ckpt", "{plan}", "--prompt", "", "-n", "2"], ("continues", "")),
    (
        "generate-whitespace-prompt",
        {},
        ["generate", "--ckpt", "{plan}", "--prompt", " \t ", "-n", "2"],
        ("continues", " \t "),
    ),
    (
        "generate-prompt-longer-than-context",
        {},
        ["generate", "--ckpt", "{plan}", "--prompt", "Tom ran. " * 300, "-n", "2"],
        ("continues", "Tom ran. " * 300),
    ),
    (
        "generate-hostile-prompt",
        {},
        ["generate", "--ckpt", "{plan}", "--prompt", MIXED, "-n", "2"],
        ("continues", MIXED),
    ),
    (
        "generate-two-sentence-goal",
        {},
        ["generate", "--ckpt", "{plan}", "--prompt", "Hi.", "--goal", "Tom ran home. Mia sat down."],
        ("error", "one sentence"),
    ),
    (
        "generate-zero-beams",
        {},
        ["generate", "--ckpt", "{plan}", "--prompt", "Hi.", "--beams", "0"],
        ("error", "--beams", ">= 1"),
    ),
    (
        "generate-zero-sentences",
        {},
        ["generate", "--ckpt", "{plan}", "--prompt", "Hi.", "-n", "0"],
        ("error", "--sentences", ">= 1"),
    ),
    (
        "generate-bad-top-p",
        {},
        ["generate", "--ckpt", "{plan}", "--prompt", "Hi.", "--sample", "--top-p", "2"],
        ("error", "--top-p", "must be in"),
    ),
    (
        "generate-tokenizer-run-as-planner",
        {},
        ["generate", "--ckpt", "{run}", "--prompt", "Hi."],
        ("error", "tokenizer run"),
    ),
    # training: configs, data, output
    ("train-unknown-key", {}, ["train", "tokenizer", "--out", "{tmp}/x", "model.nope=1"], ("error", "nope", "not in")),
    (
        "train-zero-head-width",
        {},
        ["train", "tokenizer", "--out", "{tmp}/x", "model.decoder.dim_head=0", "data.synthetic_docs=200"],
        ("error", "width of one attention head", ">= 1"),
    ),
    (
        "train-tokenizer-with-a-state",
        {},
        ["train", "tokenizer", "--out", "{tmp}/x", "model.decoder.state_dim=8", "data.synthetic_docs=200"],
        ("error", "state_dim", "learnt after the planner"),
    ),
    (
        "train-pointer-loss-without-copy",
        {},
        ["train", "tokenizer", "--out", "{tmp}/x", "model.loss.copy_pointer_weight=0.1", "data.synthetic_docs=200"],
        ("error", "copy_pointer_weight", "needs model.decoder.copy"),
    ),
    (
        "train-negative-state",
        {},
        ["train", "tokenizer", "--out", "{tmp}/x", "model.decoder.state_dim=-1", "data.synthetic_docs=200"],
        ("error", "state_dim", ">= 0"),
    ),
    (
        "train-wrong-type",
        {},
        ["train", "tokenizer", "--out", "{tmp}/x", "train.max_steps=ten"],
        ("error", "max_steps", "could not be converted"),
    ),
    (
        "train-bad-yaml",
        {"bad.yaml": "train: [unclosed\n"},
        ["train", "tokenizer", "--config", "{tmp}/bad.yaml", "--out", "{tmp}/x"],
        ("error", "bad.yaml", "could not read config"),
    ),
    (
        "train-missing-data",
        {},
        ["train", "tokenizer", "--out", "{tmp}/x", "data.source={tmp}/none.jsonl"],
        ("error", "no such file", "none.jsonl"),
    ),
    (
        "train-empty-data-dir",
        {"data/.keep": ""},
        ["train", "tokenizer", "--out", "{tmp}/x", "data.source={tmp}/data"],
        ("error", "no data files", "in directory"),
    ),
    (
        "train-unwritable-out",
        {"file": "x"},
        ["train", "tokenizer", "--out", "{tmp}/file/run"],
        ("error", "cannot write", "not a directory"),
    ),
    ("train-planner-without-tokenizer", {}, ["train", "planner", "--out", "{tmp}/p"], ("error", "tokenizer")),
    ("train-baseline-without-tokenizer", {}, ["train", "baseline", "--out", "{tmp}/b"], ("error", "tokenizer")),
    ("demo-unknown-key", {}, ["demo", "--out", "{tmp}/d", "model.nope=1"], ("error", "nope", "not in")),
    # evaluation
    (
        "eval-tokenizer-missing-data",
        {},
        ["eval", "tokenizer", "--ckpt", "{run}", "--data", "{tmp}/none.txt"],
        ("error", "no such file", "none.txt"),
    ),
    ("eval-planner-on-tokenizer-run", {}, ["eval", "planner", "--ckpt", "{run}"], ("error", "tokenizer run")),
    (
        "eval-planner-zero-candidates",
        {},
        ["eval", "planner", "--ckpt", "{plan}", "--decode-candidates", "0"],
        ("error", "--decode-candidates", ">= 1"),
    ),
    (
        "eval-planner-negative-passes",
        {},
        ["eval", "planner", "--ckpt", "{plan}", "--decode-passes", "-1"],
        ("error", "--decode-passes", ">= 0"),
    ),
]


@pytest.mark.parametrize("name, files, argv, expected", CASES, ids=[c[0] for c in CASES])
def test_hostile_input(name, files, argv, expected, toy_run, toy_planner_run, tmp_path, capsys):
    run_case(files, argv, expected, toy_run, toy_planner_run, tmp_path, capsys)


def run_case(files, argv, expected, toy_run, toy_planner_run, tmp_path, capsys) -> None:
    """Write a case's files, run its argv and check the expected outcome (module docstring)."""
    for rel, content in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8")
    argv = [a.format(run=toy_run, plan=toy_planner_run, tmp=tmp_path) for a in argv]
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    kind, *want = expected
    if kind == "ok":
        assert code == 0, err
        assert want[0] in out
    elif kind == "continues":
        assert code == 0, err
        assert main([*argv, "--json"]) == 0
        record = json.loads(capsys.readouterr().out)
        assert record["prompt"] == want[0].rstrip("\n")  # a prompt is one line: its newline ends it
        ideas = record["plans"][0]["ideas"]
        assert len(ideas) == int(argv[argv.index("-n") + 1]) and all(i.strip() for i in ideas)
    else:
        assert code == 2, err
        message = error_line(err)
        assert all(w.lower() in message for w in want), err
        inputs = " ".join([*argv, *map(str, files.values())]).lower()
        assert any(w.lower() not in inputs for w in want), f"every fragment of {want} is in the input itself"


def test_a_1mb_sentence_is_split_losslessly(toy_tok, tmp_path, capsys):

    ideas = toy_tok.split(LONG)
    assert len(ideas) > 1 and max(map(len, ideas)) <= toy_tok.cfg.data.max_idea_tokens
    assert toy_tok.bpe.decode([t for idea in ideas for t in idea]) == LONG


@pytest.mark.parametrize("what", ["tokenizer", "planner"])
def test_a_corrupt_or_foreign_checkpoint_is_one_line(what, toy_run, toy_planner_run, tmp_path, capsys):
    run = tmp_path / what
    shutil.copytree(toy_run if what == "tokenizer" else toy_planner_run, run, ignore=shutil.ignore_patterns("codes"))
    argv = ["encode", "--ckpt", str(run), str(tmp_path / "in.txt")] if what == "tokenizer" else None
    argv = argv or ["generate", "--ckpt", str(run), "--prompt", "Hi."]
    (tmp_path / "in.txt").write_text("Tom ran.\n")
    _corrupt(run / "model.safetensors")
    assert main(argv) == 2
    assert "model.safetensors" in error_line(capsys.readouterr().err)
    # a run from another version or config: an unknown key in its config.yaml
    shutil.copy(toy_run / "model.safetensors" if what == "tokenizer" else toy_planner_run / "model.safetensors", run)
    (run / "config.yaml").write_text((run / "config.yaml").read_text() + "from_the_future: 1\n")
    assert main(argv) == 2
    assert "config.yaml" in error_line(capsys.readouterr().err)
    # a run whose config no longer matches its weights (another model size)
    shutil.copy((toy_run if what == "tokenizer" else toy_planner_run) / "config.yaml", run)
    text, n = re.subn(r"(\n\s+dim: )32\n", r"\g<1>48\n", (run / "config.yaml").read_text(), count=1)
    assert n == 1
    (run / "config.yaml").write_text(text)
    assert main(argv) == 2
    assert "model.safetensors" in error_line(capsys.readouterr().err)


def test_the_python_api_raises_one_line_errors(toy_tok, toy_pipe):
    import torch

    from hiertok.codes import Codes

    with pytest.raises(ValueError, match="out of range"):
        toy_tok.decode(Codes(torch.full((1, 1, 4), 10**6), torch.ones(1, 1, dtype=torch.bool), toy_tok.codebook_sizes))
    assert toy_pipe.generate(MIXED, sentences=2).best.ideas  # hostile text plans and decodes
    with pytest.raises(ValueError, match="one sentence"):
        toy_pipe.generate("Hi.", goal="Tom ran home. Mia sat down.")


def test_a_truncated_checkpoint_is_named_on_resume(toy_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(toy_run, run, ignore=shutil.ignore_patterns("codes"))
    latest = sorted((run / "checkpoints").glob("step_*"))[-1]
    for f in latest.iterdir():
        if f.suffix in (".safetensors", ".bin"):
            _corrupt(f)
    from .conftest import TOY

    assert main(["train", "tokenizer", "--out", str(run), "--resume", *TOY, "train.max_steps=45"]) == 2
    assert latest.name in error_line(capsys.readouterr().err)


def test_json_output_of_hostile_text_round_trips(toy_run, tmp_path, capsys):
    (tmp_path / "mixed.txt").write_text(MIXED)
    assert main(["encode", "--ckpt", str(toy_run), str(tmp_path / "mixed.txt")]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    assert len(record["codes"]) >= 1
