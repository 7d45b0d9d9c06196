"""Decoding a plan until it is stable: later passes from drafts, or token by token, side by side.

A later decoding pass starts each idea from the text it got in the pass before, as a draft
(hiertok/story_decoding.py, decoder/drafts.py): one teacher-forced forward pass keeps a text that is still
greedy, and a changed one is corrected where it changed and checked again. With `verify=False` every idea whose
story changed is decoded token by token instead. This bench plans the continuations of held-out synthetic
prompts (beam search, as `eval planner` does), then decodes the same plans both ways with `--candidates`
decodings per idea and passes until nothing changes. It reports the two times (medians of `--repeats`,
alternating), their ratio, and whether the texts agree. With one candidate both are greedy decoding, so the
texts must be equal (up to float near-ties); with more, the sampled candidates of the ideas decoded again are
drawn in a different batch, so a few texts may differ.

    python experiments/bench_fixed_point.py --planner runs/story_context/copy-s0/planner --candidates 1 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from hiertok.data.synthetic import StoryWorld
from hiertok.pipeline import Pipeline


@dataclass
class Row:
    prompts: int
    ideas: int
    candidates: int
    drafts_s: float  # later passes from drafts
    tokens_s: float  # later passes token by token
    speedup: float  # tokens_s / drafts_s
    same_texts: float  # fraction of planned ideas whose text is the same both ways


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--planner", required=True, help="planner run directory")
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--ideas", type=int, default=8, help="planned ideas per prompt")
    p.add_argument("--beams", type=int, default=4)
    p.add_argument("--candidates", type=int, nargs="+", default=[1, 4])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="experiments/results/fixed_point")
    args = p.parse_args()
    for name in ("prompts", "ideas", "beams", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if min(args.candidates) < 1:
        p.error("--candidates must be >= 1")
    torch.set_num_threads(1)  # per-core figures, as bench_generation's
    pipe = Pipeline.from_pretrained(args.planner)
    first = [s.sentences[0] for s in StoryWorld().generate(args.prompts, seed=4242)]
    codes = pipe.tokenizer.encode(first).ids[:, :1, : pipe.levels]
    known = [pipe.tokenizer.split(t)[:1] for t in first]
    search = pipe.cfg.search
    search.max_ideas, search.num_beams, search.allow_end, search.temperature = args.ideas, args.beams, False, 0.0
    plans = [[per[0]] for per in pipe.plans(codes, None, search)]
    rows = []
    for n in args.candidates:
        times: dict[bool, list[float]] = {True: [], False: []}
        texts = {}
        for _ in range(args.repeats):
            for verify in (True, False):
                start = time.perf_counter()
                texts[verify] = pipe.expand(codes, plans, candidates=n, prompt_ideas=known, passes=0, verify=verify)
                times[verify].append(time.perf_counter() - start)
        flat = {v: [t for per in texts[v] for t in per[0]] for v in texts}
        same = sum(a == b for a, b in zip(flat[True], flat[False])) / max(1, len(flat[True]))
        on, off = statistics.median(times[True]), statistics.median(times[False])
        rows.append(Row(args.prompts, args.ideas, n, on, off, off / on, same))
        print(json.dumps(asdict(rows[-1])), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".jsonl").write_text("".join(json.dumps(asdict(r)) + "\n" for r in rows))
    print("| candidates | from drafts s | token by token s | speed-up | same texts |\n|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r.candidates} | {r.drafts_s:.2f} | {r.tokens_s:.2f} | {r.speedup:.2f}x | {r.same_texts:.3f} |")


if __name__ == "__main__":
    main()
