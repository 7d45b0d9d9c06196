"""Where a tiny.yaml tokenizer training step spends its time, in fp32 or under bf16 autocast: 20 steps timed, then
10 more under the torch profiler (ops by self time). The BPE and the corpus are built as `train tokenizer` builds
them; the optimizer is plain AdamW.

    python experiments/results/precision/profile_tokenizer_step.py          # fp32
    python experiments/results/precision/profile_tokenizer_step.py bf16     # torch.autocast("cpu", bfloat16)
"""

import contextlib
import itertools
import sys
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from hiertok.config import load_config
from hiertok.data.bpe import BPE
from hiertok.data.corpus import train_split
from hiertok.tokenizer import IdeaTokenizer, TokenizerConfig
from hiertok.train_tokenizer import build_corpora, training_collator
from hiertok.training import StepBatches

bf16 = sys.argv[1:] == ["bf16"]
cfg = load_config(TokenizerConfig, "configs/tokenizer/tiny.yaml")
bpe = BPE.train(itertools.islice(train_split(cfg.data).docs(), cfg.data.bpe_docs), cfg.data.vocab_size)
corpus, _ = build_corpora(cfg, bpe)
collate = training_collator(cfg, corpus, bpe.pad_id)
lengths = np.diff(corpus.idea_offsets)
plan = StepBatches(corpus.num_ideas, cfg.train.batch_size, 0, 0, 1, lengths=lengths, pool=cfg.train.bucket_pool)
model = IdeaTokenizer(cfg, bpe).model.train()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)


def step(i: int) -> None:
    batch = collate(plan.indices(i))
    with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
        out = model(batch)
    out.loss.backward()
    optimizer.step()
    optimizer.zero_grad()


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
