"""How many of tiny.yaml's detail-noise swaps could the story correct?

Over 20 training batches of 64 ideas of a tokenizer run (its own config, BPE and codes), count the targets shown
some earlier text (told), those with a same-gist partner in the batch (whom tiny.yaml's detail noise may swap),
and those with a partner whose differing tokens the story shows (hiertok/detail_noise.py: copyable_partners).

    python experiments/results/copyable/partners.py runs/demo16/tokenizer
"""

import sys

import numpy as np
import torch

from hiertok.detail_noise import copyable_partners
from hiertok.tokenizer import IdeaTokenizer
from hiertok.train_tokenizer import build_corpora, training_collator
from hiertok.training import StepBatches

torch.manual_seed(0)
tok = IdeaTokenizer.from_pretrained(sys.argv[1])
corpus, _ = build_corpora(tok.cfg, tok.bpe)
collate = training_collator(tok.cfg, corpus, tok.bpe.pad_id)
plan = StepBatches(corpus.num_ideas, 64, 0, 0, 1, lengths=np.diff(corpus.idea_offsets), pool=1)
model = tok.model.eval()
c = model.decoder.cfg.context
counts = dict(targets=0, told=0, same_gist=0, copyable=0)
for step in range(20):
    b = collate(plan.indices(step))
    with torch.no_grad():
        needed = model.encoded_rows(b)
        rows = needed.nonzero().squeeze(1)
        q = model.quantizer(model.encode_rows(b, needed)[rows]).at_rows(rows, len(b.tokens))
    context, known = model.sample_context(b.context)
    shown = (context[:, :c] >= 0) & known[:, :c]
    told = shown.any(1)
    t = b.targets
    idx, kept = q.indices[t], q.kept_levels[t]
    same = (idx[:, None, 0] == idx[None, :, 0]) & (kept[None, :] >= kept[:, None])
    same.fill_diagonal_(False)
    ctx_rows = context[:, :c].clamp(min=0)
    allowed = same & copyable_partners(*b.rows(t), b.tokens[ctx_rows], b.mask[ctx_rows] & shown[..., None])
    counts["targets"] += len(t)
    counts["told"] += int(told.sum())
    counts["same_gist"] += int((told & same.any(1)).sum())
    counts["copyable"] += int((told & allowed.any(1)).sum())
print(counts)
