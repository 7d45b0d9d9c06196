"""--device reaches every command that loads a model: the same output on the CPU through it, one line for a bad one.

(No GPU on the development machines: this checks the plumbing, not a CUDA run.)
"""

import pytest
import torch

from hiertok.cli import main
from hiertok.config import parse_device

PROMPT = ["--prompt", "Tom found a key.", "--sentences", "3", "--beams", "2"]


def _out(capsys, argv: list[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def test_device_cpu_gives_the_default_output(toy_run, toy_planner_run, tmp_path, capsys):
    gen = ["generate", "--ckpt", str(toy_planner_run), *PROMPT]
    assert _out(capsys, [*gen, "--device", "cpu"]) == _out(capsys, gen)
    docs = tmp_path / "docs.txt"
    docs.write_text("Tom found a red ball. He gave it to Mia.\n")
    enc = ["encode", "--ckpt", str(toy_run), str(docs)]
    codes = _out(capsys, enc)
    assert _out(capsys, [*enc, "--device", "cpu"]) == codes
    (tmp_path / "codes.jsonl").write_text(codes)
    dec = ["decode", "--ckpt", str(toy_run), str(tmp_path / "codes.jsonl")]
    assert _out(capsys, [*dec, "--device", "cpu"]) == _out(capsys, dec)


@pytest.mark.parametrize(("name", "message"), [("banana", "unknown device"), ("cuda:99", "device 'cuda:99'")])
def test_a_bad_device_is_one_line(toy_run, name, message, capsys):
    assert main(["encode", "--ckpt", str(toy_run), "--device", name]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match=message):
        parse_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_cuda_device_is_one_line():
    with pytest.raises(ValueError, match="this torch has no CUDA device"):
        parse_device("cuda")
