"""Where a tiny.yaml tokenizer training step spends its time, in fp32 or under bf16 autocast: 20 steps timed, then
10 more under the torch profiler (ops by self time). The BPE and the corpus are built as `train tokenizer` builds
them; the optimizer is plain AdamW.

    python experiments/results/precision/profile_tokenizer_step.py          # fp32
    python experiments/results/precision/profile_tokenizer_step.py bf16     # torch.autocast("cpu", bfloat16)
"""

import sys
import time
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tokenizer_step import tokenizer_step  # noqa: E402

bf16 = sys.argv[1:] == ["bf16"]
step = tokenizer_step([], bf16)


for i in range(5):  # warm up
    step(i)
start = time.perf_counter()
for i in range(5, 25):
    step(i)
print(f"{'bf16 autocast' if bf16 else 'fp32'}: {(time.perf_counter() - start) / 20 * 1e3:.0f} ms a step")
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for i in range(25, 35):
        step(i)
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
