"""Milliseconds a tiny.yaml tokenizer training step takes, under `key=value` overrides of configs/tokenizer/tiny.yaml:
5 warm-up steps, then the mean of 30 (plain AdamW, no Accelerate; the BPE and corpus built as `train tokenizer` builds
them). Run variants one after the other, nothing else running.

    python experiments/results/lean/step_time.py model.encoder.dim_head=32 model.decoder.dim_head=32
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "precision"))
from tokenizer_step import tokenizer_step  # noqa: E402

step = tokenizer_step(sys.argv[1:])
for i in range(5):
    step(i)
start = time.perf_counter()
for i in range(5, 35):
    step(i)
print(" ".join(sys.argv[1:]) or "tiny.yaml", f"{(time.perf_counter() - start) / 30 * 1e3:.0f} ms a step")
