"""Training and encoding throughput: bytes of text per second for a training step of the tokenizer, the
planner and the flat baseline, and ideas per second for `encode`, measured side by side in one run.

Each contender is built as its training entry point builds it (same configs, optimizer, batches) from the
runs given; contenders alternate in rounds of --steps steps, and the median seconds per step over the
rounds is reported. A step's bytes are the UTF-8 bytes of the text its batch covers: the target ideas
(tokenizer), the ideas of the code windows (planner), the tokens of the token windows (baseline).

    python experiments/bench_throughput.py --planner runs/demo/planner --baseline runs/flat \\
        --out experiments/results/throughput
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hiertok.data.corpus import heldout_split, train_split
from hiertok.data.ideas import IdeaCorpus
from hiertok.flat_lm import FlatLM, TokenWindows, load_baseline
from hiertok.pipeline import Pipeline
from hiertok.tokenizer import IdeaTokenizer
from hiertok.train_baseline import document_ids
from hiertok.train_tokenizer import training_collator
from hiertok.training import StepBatches, make_optimizer
from planner.config import build_planner, data_config, load_codes
from planner.windows import Windows


@dataclass
class Row:
    contender: str
    params: int
    batch: int
    seconds_per_step: float
    bytes_per_step: float
    bytes_per_s: float


@dataclass
class Contender:
    name: str
    params: int
    batch: int
    step: Callable[[int], float]  # runs training step i, returns the bytes of text it covered


def _train_step(model: torch.nn.Module, optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


def tokenizer_contender(tok: IdeaTokenizer, corpus: IdeaCorpus, idea_bytes: np.ndarray) -> Contender:
    cfg = tok.cfg
    collate = training_collator(cfg, corpus, tok.bpe.pad_id)
    plan = StepBatches(corpus.num_ideas, cfg.train.batch_size, 0, 0, 1, np.diff(corpus.idea_offsets), 1)
    model = tok.model.train()
    optimizer, _ = make_optimizer(model, cfg.train)

    def step(i: int) -> float:
        idx = plan.indices(i)
        _train_step(model, optimizer, model(collate(idx)).loss)
        return float(idea_bytes[idx].sum())

    return Contender("tokenizer", sum(p.numel() for p in model.parameters()), cfg.train.batch_size, step)


def planner_contender(pipe: Pipeline, idea_bytes: np.ndarray) -> Contender:
    cfg = pipe.cfg
    train_codes, _ = load_codes(cfg, pipe.tokenizer)
    if len(train_codes.codes) != len(idea_bytes):
        raise ValueError("the planner's code shards and the tokenizer's corpus disagree on the number of ideas")
    windows = Windows(train_codes, cfg.data.window)
    plan = StepBatches(len(windows), cfg.train.batch_size, 0, 0, 1, windows.lengths, 1)
    model = build_planner(cfg, pipe.tokenizer).train()
    optimizer, _ = make_optimizer(model, cfg.train)

    def step(i: int) -> float:
        idx = plan.indices(i)
        nll, mask = model(*windows.batch(idx, model.vocab, cfg.goal_dropout, seed=i).args())
        _train_step(model, optimizer, nll.sum() / mask.sum())
        rows = windows.rows[np.asarray(idx)]
        return float(sum(idea_bytes[lo:hi].sum() for _, lo, hi in rows))

    return Contender("planner", sum(p.numel() for p in model.parameters()), cfg.train.batch_size, step)


def baseline_contender(lm: FlatLM, cfg, tok: IdeaTokenizer, docs: list[str]) -> Contender:
    windows = TokenWindows.build(document_ids(tok, docs), cfg.model.context, overlap=False)
    plan = StepBatches(len(windows), cfg.train.batch_size, 0, 0, 1, windows.lengths, 1)
    special = {tok.bpe.bos_id, tok.bpe.eos_id, tok.bpe.pad_id}
    model = lm.train()
    optimizer, _ = make_optimizer(model, cfg.train)

    def step(i: int) -> float:
        tokens, mask, _ = windows.batch(plan.indices(i), tok.bpe.pad_id)
        nll, tmask = model(tokens, mask)
        _train_step(model, optimizer, nll.sum() / tmask.sum())
        rows = [[t for t in row[m].tolist() if t not in special] for row, m in zip(tokens, mask)]
        return float(sum(len(tok.bpe.decode(r).encode()) for r in rows))

    return Contender("baseline", sum(p.numel() for p in model.parameters()), cfg.train.batch_size, step)


def measure(contenders: list[Contender], rounds: int, steps: int, warmup: int = 2) -> list[Row]:
    """Alternate the contenders `rounds` times, `steps` steps each; median seconds per step."""
    for c in contenders:
        for i in range(warmup):
            c.step(10_000 + i)
    per_step: dict[str, list[float]] = {c.name: [] for c in contenders}
    covered: dict[str, list[float]] = {c.name: [] for c in contenders}
    counter = 0
    for _ in range(rounds):
        for c in contenders:
            t0 = time.perf_counter()
            got = [c.step(counter + i) for i in range(steps)]
            per_step[c.name].append((time.perf_counter() - t0) / steps)
            covered[c.name].append(sum(got) / steps)
        counter += steps
    rows = []
    for c in contenders:
        s, b = statistics.median(per_step[c.name]), statistics.mean(covered[c.name])
        rows.append(Row(c.name, c.params, c.batch, s, b, b / s))
    return rows


def encoding_throughput(tok: IdeaTokenizer, docs: list[str], repeats: int = 3) -> dict[str, float]:
    """Ideas per second (and bytes per second) of `IdeaTokenizer.encode` on `docs`, median of repeats."""
    n_ideas = int(tok.encode(docs).mask.sum())
    n_bytes = sum(len(d.encode()) for d in docs)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        tok.encode(docs)
        times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    return {"docs": len(docs), "ideas": n_ideas, "seconds": s, "ideas_per_s": n_ideas / s, "bytes_per_s": n_bytes / s}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--planner", required=True, help="planner run (its tokenizer run is used too)")
    p.add_argument("--baseline", required=True, help="flat baseline run on the same tokenizer")
    p.add_argument("--out", required=True, help="output path without extension (.json and .md are written)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=5, help="steps per contender per round")
    p.add_argument("--encode-docs", type=int, default=200, help="held-out documents encoded")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    pipe = Pipeline.from_pretrained(args.planner)
    tok = pipe.tokenizer
    data = data_config(pipe.cfg, tok)
    docs = list(train_split(data).docs())
    corpus = IdeaCorpus.build(docs, tok.bpe, tok.segmentation)
    idea_bytes = np.array([len(tok.bpe.decode(corpus.idea(i).tolist()).encode()) for i in range(corpus.num_ideas)])
    lm, bcfg = load_baseline(args.baseline)
    # Fresh training copies: the benchmark's optimizer steps must not touch the runs' weights in memory.
    training_tok = IdeaTokenizer.from_pretrained(pipe.cfg.tokenizer)
    contenders = [
        tokenizer_contender(training_tok, corpus, idea_bytes),
        planner_contender(pipe, idea_bytes),
        baseline_contender(lm, bcfg, tok, docs),
    ]
    rows = measure(contenders, args.rounds, args.steps)
    held = list(heldout_split(data, limit=args.encode_docs).docs())
    encoding = encoding_throughput(tok, held)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "planner": args.planner,
        "baseline": args.baseline,
        "threads": torch.get_num_threads(),
        "training": [asdict(r) for r in rows],
        "encoding": encoding,
    }
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "| training step | params | batch | s/step | text bytes/step | bytes/s |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {r.contender} | {r.params / 1e6:.2f}M | {r.batch} | {r.seconds_per_step:.3f} | "
            f"{r.bytes_per_step:.0f} | {r.bytes_per_s:.0f} |"
            for r in rows
        ),
        "",
        f"Encoding: {encoding['ideas']} ideas of {encoding['docs']} held-out documents in {encoding['seconds']:.2f} s: "
        f"{encoding['ideas_per_s']:.0f} ideas/s ({encoding['bytes_per_s']:.0f} bytes/s).",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
