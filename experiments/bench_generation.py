"""Generation speed: hierarchical (plan S ideas with beam search, decode them in one batch) vs a flat LM.

With a story context the decoder reads the prompt's text and, from the second decoding pass on, the text
the earlier planned ideas got in the pass before; `--passes` sets the passes (0: until a pass changes
nothing, which gives what decoding the ideas one after another gives), one row each.

Both contenders produce the same number of output tokens: the flat LM (x-transformers' cached greedy
generation, no EOS) writes exactly as many tokens per row as the hierarchical system's decoded ideas
hold on average, for each of `--prompts` batches of held-out prompts (one prompt's plan may run long
or short; the times are summed). The flat LM has the parameter count of tokenizer + planner (depth
matched at the baseline's width); its weights do not matter for speed, so an untrained one stands in
unless --baseline names a trained run. Contenders alternate, repeats take the median. Peak memory: how far one
generation of one contender raises the resident set of a fresh child process, at its peak, above what
the loaded models take.

    python experiments/bench_generation.py --planner runs/demo/planner --out experiments/results/generation
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import torch
from x_transformers import AutoregressiveWrapper

from hiertok.data.synthetic import StoryWorld
from hiertok.flat_lm import FlatLM, FlatLMConfig, count_params, depth_for, load_baseline
from hiertok.pipeline import Pipeline
from hiertok.train_baseline import hierarchy_params
from planner.search import SearchConfig


@dataclass
class Row:
    ideas: int
    batch: int
    prompts: int  # batches of prompts generated one after the other; the times are their sums
    passes: int  # decoding passes asked for (0: until nothing changes)
    tokens_per_row: float
    hier_s: float
    flat_s: float
    speedup: float  # flat_s / hier_s
    hier_tokens_per_s: float = 0.0
    flat_tokens_per_s: float = 0.0
    hier_peak_mb: float | None = None
    flat_peak_mb: float | None = None


def load(planner: str, baseline: str | None) -> tuple[Pipeline, FlatLM]:
    pipe = Pipeline.from_pretrained(planner)
    if baseline:
        flat, _ = load_baseline(baseline)
    else:
        cfg = FlatLMConfig()
        vocab = pipe.tokenizer.bpe.vocab_size
        cfg.depth = depth_for(cfg, vocab, hierarchy_params(planner))
        torch.manual_seed(0)
        flat = FlatLM(cfg, vocab)
    return pipe, flat.eval()


def prompts(pipe: Pipeline, batch: int, group: int = 0) -> tuple[torch.Tensor, list[list[list[int]]]]:
    """(batch, 1, L) codes of the first sentences of held-out synthetic stories (the `group`-th batch of them), and
    their token ids."""
    stories = StoryWorld().generate(batch * (group + 1), seed=4242)[batch * group :]
    first = [s.sentences[0] for s in stories]
    return pipe.tokenizer.encode(first).ids[:, :1, : pipe.levels], [pipe.tokenizer.split(t)[:1] for t in first]


def bench_search(pipe: Pipeline, ideas: int, beams: int) -> SearchConfig:
    """The bench's search settings: exactly `ideas` ideas (no early end), beam search of width `beams`."""
    return dataclasses.replace(pipe.cfg.search, max_ideas=ideas, num_beams=beams, allow_end=False, temperature=0.0)


def one_prompt(planner: str, ideas: int = 16, beams: int = 4) -> tuple[Pipeline, tuple, SearchConfig]:
    """The planner run, the bench's batch-1 prompt (codes, token ids) and its search settings: what the profiling
    scripts under experiments/results/ time."""
    pipe, _ = load(planner, None)
    return pipe, prompts(pipe, 1), bench_search(pipe, ideas, beams)


@torch.no_grad()
def run_hier(pipe: Pipeline, prompt: tuple, ideas: int, beams: int, passes: int) -> int:
    """Plan `ideas` ideas per prompt and decode them; returns the output tokens."""
    codes, known = prompt
    plans = pipe.plans(codes, None, bench_search(pipe, ideas, beams))
    texts = pipe.expand(codes, [[per[0]] for per in plans], candidates=1, prompt_ideas=known, passes=passes)
    return sum(len(pipe.tokenizer.bpe.encode(t)) for per in texts for t in per[0])


@torch.no_grad()
def run_flat(flat: FlatLM, bos: int, batch: int, tokens: int) -> int:
    gen = AutoregressiveWrapper(flat.net)
    start = torch.full((batch, 1), bos, dtype=torch.long)
    out = gen.generate(start, tokens, temperature=0.0, cache_kv=True)
    return out.numel()


def added_peak_mb(fn) -> float:
    """MB by which running `fn` raises this process's resident set at its peak (RSS sampled every ms).

    Sampled by hand: torch reports no allocator statistics on the CPU, and the process's high-water mark
    (ru_maxrss) is set by loading the models, not by generating.
    """
    proc, peak, done = psutil.Process(), [0], threading.Event()
    base = proc.memory_info().rss

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.001)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    return max(0, peak[0] - base) / 2**20


def peak_mb(args: argparse.Namespace, who: str, ideas: int, batch: int, tokens: int, passes: int, group: int) -> float:
    """MB by which one generation of `who` (of the `group`-th batch of prompts) raises a fresh child process's
    resident set, at its peak."""
    cmd = [sys.executable, __file__, "--planner", args.planner, "--passes", str(passes)]
    cmd += ["--child", who, str(ideas), str(batch), str(tokens), str(group)]
    if args.baseline:
        cmd += ["--baseline", args.baseline]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--planner", required=True, help="planner run directory")
    p.add_argument("--baseline", default=None, help="flat LM run (default: an untrained one of matched size)")
    p.add_argument("--ideas", type=int, nargs="+", default=[4, 16, 64])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--beams", type=int, default=4)
    p.add_argument("--passes", type=int, nargs="+", default=[1, 0], help="decoding passes (0: until stable)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="experiments/results/generation")
    p.add_argument("--prompts", type=int, default=8, help="batches of prompts, one after the other (times summed)")
    p.add_argument("--child", nargs=5, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.prompts < 1:
        p.error(f"--prompts must be >= 1, got {args.prompts}")
    torch.set_num_threads(1)  # the numbers are per core; a second thread did not speed decoding here
    pipe, flat = load(args.planner, args.baseline)
    if args.child:  # one generation, then report this process's peak memory
        who, ideas, batch, tokens, group = args.child[0], *map(int, args.child[1:])
        prompt = prompts(pipe, batch, group)
        if who == "hier":
            added = added_peak_mb(lambda: run_hier(pipe, prompt, ideas, args.beams, args.passes[0]))
        else:
            added = added_peak_mb(lambda: run_flat(flat, pipe.tokenizer.bpe.bos_id, batch, tokens))
        print(added)
        return
    print(f"hierarchical {hierarchy_params(args.planner) / 1e6:.2f}M params, flat {count_params(flat) / 1e6:.2f}M")
    rows = []
    for batch in args.batches:
        for ideas in args.ideas:
            for passes in args.passes:
                groups = [prompts(pipe, batch, g) for g in range(args.prompts)]
                # warm-up, and the token count the flat LM matches for each batch of prompts
                per_row = [
                    max(1, round(run_hier(pipe, prompt, ideas, args.beams, passes) / batch)) for prompt in groups
                ]
                run_flat(flat, pipe.tokenizer.bpe.bos_id, batch, per_row[0])
                hier, fl = [], []
                for _ in range(args.repeats):  # alternate the contenders
                    h = f = 0.0
                    for prompt, n in zip(groups, per_row):
                        t = time.perf_counter()
                        run_hier(pipe, prompt, ideas, args.beams, passes)
                        h += time.perf_counter() - t
                        t = time.perf_counter()
                        run_flat(flat, pipe.tokenizer.bpe.bos_id, batch, n)
                        f += time.perf_counter() - t
                    hier.append(h)
                    fl.append(f)
                h, f = statistics.median(hier), statistics.median(fl)
                tokens = sum(per_row) * batch
                row = Row(ideas, batch, args.prompts, passes, tokens / batch / args.prompts, h, f, f / h)
                row.hier_tokens_per_s, row.flat_tokens_per_s = tokens / h, tokens / f
                peak = max(range(args.prompts), key=per_row.__getitem__)  # memory of the longest generation
                row.hier_peak_mb = peak_mb(args, "hier", ideas, batch, per_row[peak], passes, peak)
                row.flat_peak_mb = peak_mb(args, "flat", ideas, batch, per_row[peak], passes, peak)
                rows.append(row)
                print(json.dumps(asdict(row)))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    lines = [
        "| ideas | batch | prompts | passes | tokens/row | hier s | flat s | speed-up | hier tok/s | flat tok/s "
        "| hier +MB | flat +MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.ideas} | {r.batch} | {r.prompts} | {r.passes or 'until stable'} | {r.tokens_per_row:.0f} | "
            f"{r.hier_s:.3f} | {r.flat_s:.3f} | {r.speedup:.2f}x | "
            f"{r.hier_tokens_per_s:.0f} | {r.flat_tokens_per_s:.0f} | {r.hier_peak_mb:.0f} | {r.flat_peak_mb:.0f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
