"""Tokenizer step times of several variants of configs/tokenizer/tiny.yaml measured side by side in one process: the
variants take turns, 5 steps each, for 6 rounds after 3 warm-up steps, so that the machine's drift (up to 30% within
a session here) falls on all of them alike. Variants are `key=value` override lists separated by ` , `; the first is
the reference of the ratios (an empty one: tiny.yaml as it is).

    python experiments/results/precision/steps_side_by_side.py " , model.encoder.dim_head=32 model.decoder.dim_head=32"
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tokenizer_step import tokenizer_step  # noqa: E402

variants = [v.split() for v in " ".join(sys.argv[1:]).split(" , ")]
steps = [tokenizer_step(v) for v in variants]
for step in steps:
    for i in range(3):
        step(i)
seconds = [0.0] * len(steps)
for r in range(6):
    for k, step in enumerate(steps):
        start = time.perf_counter()
        for i in range(5):
            step(3 + 5 * r + i)
        seconds[k] += time.perf_counter() - start
for v, s in zip(variants, seconds):
    print(f"{' '.join(v) or 'tiny.yaml'}: {s / 30 * 1e3:.0f} ms a step, {s / seconds[0]:.2f}x")
