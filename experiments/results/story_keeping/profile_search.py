"""Where a beam search's time goes: the bench's prompt planned 16 ideas ahead (beam 4, one thread), timed over 5
searches, then 5 more under cProfile, by function.

    python experiments/results/story_keeping/profile_search.py runs/demo/planner
"""

import cProfile
import pstats
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # experiments/, for the bench's helpers
from bench_generation import one_prompt  # noqa: E402

torch.set_num_threads(1)
pipe, prompt, cfg = one_prompt(sys.argv[1])
for _ in range(3):  # warm up
    pipe.plans(prompt[0], None, cfg)
start = time.perf_counter()
for _ in range(5):
    pipe.plans(prompt[0], None, cfg)
print(f"one search: {(time.perf_counter() - start) / 5:.3f} s")
profiler = cProfile.Profile()
profiler.enable()
for _ in range(5):
    pipe.plans(prompt[0], None, cfg)
profiler.disable()
pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
