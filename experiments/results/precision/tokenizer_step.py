"""One tiny.yaml tokenizer training step, its data built as `train tokenizer` builds it (the BPE, the corpus, the
batches), with plain AdamW and no Accelerate: what the step-timing scripts time."""

import contextlib
import itertools
from collections.abc import Callable

import numpy as np
import torch

from hiertok.config import load_config
from hiertok.data.bpe import BPE
from hiertok.data.corpus import train_split
from hiertok.tokenizer import IdeaTokenizer, TokenizerConfig
from hiertok.train_tokenizer import build_corpora, training_collator
from hiertok.training import StepBatches


def tokenizer_step(overrides: list[str], bf16: bool = False) -> Callable[[int], None]:
    """The training step of configs/tokenizer/tiny.yaml under `key=value` overrides: step(i) trains on batch i."""
    cfg = load_config(TokenizerConfig, "configs/tokenizer/tiny.yaml", overrides)
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

    return step
