"""Where the passes until stable spend their time: the matrix products of one 16-idea expansion (batch 1, one
thread, the bench's prompt and plan), by input shape, against all op time.

    python experiments/results/story_keeping/profile_expand.py runs/demo/planner
"""

import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # experiments/, for the bench's helpers
from bench_generation import one_prompt  # noqa: E402

torch.set_num_threads(1)
pipe, prompt, cfg = one_prompt(sys.argv[1])
best = [[plans[0]] for plans in pipe.plans(prompt[0], None, cfg)]
for _ in range(2):  # warm up
    pipe.expand(prompt[0], best, candidates=1, prompt_ideas=prompt[1], passes=0)
with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
    pipe.expand(prompt[0], best, candidates=1, prompt_ideas=prompt[1], passes=0)
events = prof.key_averages(group_by_input_shape=True)
mm = [e for e in events if e.key == "aten::mm"]
context_kv = sum(e.self_cpu_time_total for e in mm if e.input_shapes[0][0] >= 500)  # many rows' contexts at once
print(f"all ops {sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e3:.1f} ms")
print(f"matrix products {sum(e.self_cpu_time_total for e in mm) / 1e3:.1f} ms")
print(f"  of which with >= 500 input rows (the context's keys and values) {context_kv / 1e3:.1f} ms")
