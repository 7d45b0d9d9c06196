"""The floors of tests/test_codes_carry_information.py, measured: the toy tokenizer of tests/recon_world.py
trained at several seeds, each scored on the held-out stories the tests use.

    python experiments/recon_floors.py --seeds 0 1 2

Prints, per seed and as mean - 2 sd: exact match at full depth and at level 1, the true codes' nats over the
nats with another story's codes, and token accuracy at full depth minus level 1's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' toy world

from hiertok.cli import main as cli  # noqa: E402
from hiertok.codes import Codes  # noqa: E402
from hiertok.data.ideas import IdeaCorpus  # noqa: E402
from hiertok.evaluate import teacher_forced  # noqa: E402
from hiertok.tokenizer import IdeaTokenizer  # noqa: E402
from tests.recon_world import RECON, stories, write_corpus  # noqa: E402


def measure(seed: int, root: Path) -> dict[str, float]:
    data = write_corpus(root / "train.jsonl")
    run = root / f"tok-{seed}"
    assert cli(["train", "tokenizer", "--out", str(run), f"data.source={data}", *RECON, f"train.seed={seed}"]) == 0
    tok = IdeaTokenizer.from_pretrained(run)
    docs = stories(16, seed=12345)  # as the tests
    truth = [s if s.endswith(".") else s + "." for d in docs for s in d.split(". ")]
    codes = tok.encode(docs)
    out = {}
    for k, name in ((tok.levels, "exact_full"), (1, "exact_level1")):
        got = [s.strip() for doc in tok.decode_ideas(codes, levels=k) for s in doc]
        out[name] = sum(a == b for a, b in zip(got, truth)) / len(truth)
    corpus = IdeaCorpus.build(docs, tok.bpe, tok.segmentation)
    other = torch.roll(torch.arange(codes.num_docs), 1)
    true_nats, full = teacher_forced(tok, corpus, codes)
    other_nats, _ = teacher_forced(tok, corpus, Codes(codes.ids[other], codes.mask, codes.codebook_sizes))
    _, first = teacher_forced(tok, corpus, codes.prefix(1))
    out["nats_true_over_other"] = true_nats / other_nats
    out["accuracy_full_minus_level1"] = full - first
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {s: measure(s, Path(tmp)) for s in args.seeds}
    for key in next(iter(rows.values())):
        values = [rows[s][key] for s in args.seeds]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        mean = statistics.mean(values)
        print(f"{key}: " + " / ".join(f"{v:.3f}" for v in values) + f"  mean {mean:.3f}  mean-2sd {mean - 2 * sd:.3f}")


if __name__ == "__main__":
    main()
