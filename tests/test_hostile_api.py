"""Hostile input, round two (the Python API and text normalisation): wrong types fail at the call with a clear
TypeError / ValueError, broken weights are refused at load, and BOM / CRLF / NUL have one defined meaning."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from hiertok.cli import main
from hiertok.data.segment import normalize_text
from hiertok.pipeline import Pipeline
from hiertok.tokenizer import IdeaTokenizer

from .cli_errors import error_line

NAN = float("nan")

# (id, call on (tokenizer, pipeline), exception, fragment of its message)
API_CASES = [
    ("generate-int", lambda tok, pipe: pipe.generate(42), TypeError, "prompt must be a str"),
    ("generate-bytes", lambda tok, pipe: pipe.generate(b"Tom ran."), TypeError, "decode bytes"),
    ("generate-none", lambda tok, pipe: pipe.generate(None), TypeError, "prompt must be a str"),
    ("generate-float-beams", lambda tok, pipe: pipe.generate("Hi.", beams=2.0), TypeError, "beams must be an integer"),
    ("generate-bool-beams", lambda tok, pipe: pipe.generate("Hi.", beams=True), TypeError, "beams must be an integer"),
    ("generate-str-sentences", lambda tok, pipe: pipe.generate("Hi.", sentences="3"), TypeError, "sentences"),
    ("generate-none-seed", lambda tok, pipe: pipe.generate("Hi.", seed=None), TypeError, "seed"),
    ("generate-nan-temperature", lambda tok, pipe: pipe.generate("Hi.", temperature=NAN), ValueError, "finite"),
    ("generate-zero-beams-sampling", lambda tok, pipe: pipe.generate("Hi.", sample=True, beams=0), ValueError, "beams"),
    ("generate-zero-n-best", lambda tok, pipe: pipe.generate("Hi.", n_best=0), ValueError, "n_best"),
    ("generate-bytes-goal", lambda tok, pipe: pipe.generate("Hi.", goal=b"x"), TypeError, "goal"),
    ("decode-a-list", lambda tok, pipe: tok.decode([[1] * 16]), TypeError, "Codes"),
    (
        "encode-ideas-unknown-token",
        lambda tok, pipe: tok.encode_ideas([[99999]]),
        ValueError,
        "outside this vocabulary",
    ),
    ("encode-ideas-empty-idea", lambda tok, pipe: tok.encode_ideas([[]]), ValueError, "no tokens"),
    ("encode-ideas-a-string", lambda tok, pipe: tok.encode_ideas(["Tom"]), TypeError, "list of token ids"),
    ("encode-none-document", lambda tok, pipe: tok.encode([None]), TypeError, "document 0"),
]


@pytest.mark.parametrize("name, call, error, fragment", API_CASES, ids=[c[0] for c in API_CASES])
def test_the_python_api_fails_at_the_call(name, call, error, fragment, toy_tok, toy_pipe):
    with pytest.raises(error, match=fragment):
        call(toy_tok, toy_pipe)


def test_api_sizes_are_bounded(toy_pipe):
    with pytest.raises(ValueError, match="beams must be <="):
        toy_pipe.generate("Hi.", beams=10_000)
    with pytest.raises(ValueError, match="num_samples must be <="):
        toy_pipe.generate("Hi.", sample=True, num_samples=100_000)


@pytest.mark.parametrize("what", ["tokenizer", "planner"])
def test_weights_that_are_not_finite_are_refused_at_load(what, toy_run, toy_planner_run, tmp_path, capsys):
    run = tmp_path / what
    shutil.copytree(toy_run if what == "tokenizer" else toy_planner_run, run, ignore=shutil.ignore_patterns("codes"))
    weights = load_file(run / "model.safetensors")
    name = next(k for k, t in weights.items() if t.is_floating_point())
    weights[name][0] = float("nan")
    save_file(weights, run / "model.safetensors")
    with pytest.raises(ValueError, match="NaN or infinite"):
        IdeaTokenizer.from_pretrained(run) if what == "tokenizer" else Pipeline.from_pretrained(run, tokenizer=toy_run)
    if what == "tokenizer":
        (tmp_path / "in.txt").write_text("Tom ran.\n")
        assert main(["encode", "--ckpt", str(run), str(tmp_path / "in.txt")]) == 2
        assert "nan" in error_line(capsys.readouterr().err)


def test_bom_crlf_and_nul_are_normalised_before_splitting(toy_tok):
    assert normalize_text("\ufeffTom ran.\r\nMia\x00 sat.\rEnd.") == "Tom ran.\nMia sat.\nEnd."
    clean = toy_tok.encode("Tom ran home. Mia sat down.").ids
    for dirty in ("\ufeffTom ran home. Mia sat down.", "Tom ran home.\x00 Mia sat down.\x00"):
        assert torch.equal(toy_tok.encode(dirty).ids, clean)
    assert toy_tok.split("Tom ran.\r\nMia sat.") == toy_tok.split("Tom ran.\nMia sat.")


def test_encode_files_with_bom_crlf_nul_give_the_clean_codes(toy_run, tmp_path, capsys):
    def codes(name: str, data: bytes) -> list:
        (tmp_path / name).write_bytes(data)
        assert main(["encode", "--ckpt", str(toy_run), str(tmp_path / name)]) == 0
        return [json.loads(line)["codes"] for line in capsys.readouterr().out.splitlines()]

    clean = codes("clean.txt", b"Tom ran home.\nMia sat down.\n")
    assert codes("crlf.txt", b"\xef\xbb\xbfTom ran home.\r\nMia sat down.\r\n") == clean
    assert codes("nul.txt", b"Tom ran\x00 home.\nMia sat down.\x00\n") == clean
    jsonl = b'\xef\xbb\xbf{"text": "Tom ran home."}\r\n{"text": "Mia sat down."}\r\n'
    assert codes("bom.jsonl", jsonl) == clean  # a BOM before the first object: still JSONL, not text


def test_a_prompt_with_nul_is_not_echoed_with_it(toy_planner_run, capsys):
    argv = ["generate", "--ckpt", str(toy_planner_run), "--prompt", "\ufeffTom\x00 ran.", "-n", "1"]
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["prompt"] == "Tom ran."
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("Tom ran.")  # the toy decoder's own text may hold any byte


def test_codes_out_of_range_from_the_encoder_are_refused(toy_tok, monkeypatch):
    """What NaN activations give (-2**31 after quantization) never leaves encode_ideas as codes."""
    monkeypatch.setattr(toy_tok.model, "encode", lambda tokens, mask: torch.full((len(tokens), 4), -(2**31)))
    with pytest.raises(ValueError, match="out of range"):
        toy_tok.encode_ideas([[1, 2, 3]])


def test_an_unreachable_hub_is_said_once(monkeypatch, capsys, tmp_path):
    import socket

    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)  # as a user without HF_HUB_OFFLINE set
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)

    def no_network(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "create_connection", no_network)
    argv = ["train", "tokenizer", "--out", str(tmp_path / "x"), "data.source=nobody/no-such-dataset-hiertok"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "offline" in error_line(err) and len(err.strip().splitlines()) == 1, err
    assert datasets.config.HF_HUB_OFFLINE is False  # the flag is put back
