"""The first generation of a fresh process, with x-transformers' padding fill as einx.where or as masked_fill.

einx 0.4 builds the graph of an `einx.where` call again for every new tensor shape (through sympy), and
x-transformers calls it in every attention layer that gets a padding mask; decoding passes meet new shapes at
nearly every forward pass. hiertok/layers.py runs that one pattern as a `masked_fill`. Each contender runs in
fresh child processes (alternating, medians of `--repeats`): the first and the second `Pipeline.generate` of
the process, one thread.

    python experiments/bench_first_generation.py --planner runs/story_context/fast-s0/planner
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def child(planner: str, fill: str, prompt: str, sentences: int) -> None:
    """Print [first, second] generation seconds of this fresh process."""
    import einx
    import torch
    import x_transformers.continuous
    import x_transformers.x_transformers

    from hiertok.pipeline import Pipeline

    torch.set_num_threads(1)
    if fill == "einx":  # undo hiertok.layers' masked_fill: the library's own call
        x_transformers.x_transformers.einx = x_transformers.continuous.einx = einx
    pipe = Pipeline.from_pretrained(planner)
    times = []
    for _ in range(2):
        t = time.perf_counter()
        pipe.generate(prompt, sentences=sentences)
        times.append(time.perf_counter() - t)
    print(json.dumps(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--planner", required=True, help="planner run directory")
    p.add_argument("--prompt", default="Mia the cat walked to the park.")
    p.add_argument("--sentences", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.planner, args.child, args.prompt, args.sentences)
        return
    runs: dict[str, list[list[float]]] = {"einx": [], "masked_fill": []}
    for _ in range(args.repeats):
        for fill in runs:
            cmd = [sys.executable, __file__, "--planner", args.planner, "--child", fill, "--prompt", args.prompt]
            out = subprocess.run([*cmd, "--sentences", str(args.sentences)], capture_output=True, text=True, check=True)
            runs[fill].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| padding fill | first generation s | second generation s |\n|---|---:|---:|")
    for fill, times in runs.items():
        first, second = (statistics.median(t[i] for t in times) for i in (0, 1))
        print(f"| {fill} | {first:.3f} | {second:.3f} |")
    first = {fill: statistics.median(t[0] for t in times) for fill, times in runs.items()}
    print(f"first generation: masked_fill {first['einx'] / first['masked_fill']:.2f}x faster")


if __name__ == "__main__":
    main()
