"""Codes carry their sentence: a toy tokenizer trained on tests/recon_world.py's stories, where the next
sentence never follows from the story, so that only an idea's codes can say which sentence it is.

Floors: mean - 2 sd over train.seed 0, 1, 2 (`python experiments/recon_floors.py --seeds 0 1 2`; held-out
stories of seed 12345): exact match at full depth 0.375 / 0.375 / 0.328 (mean - 2 sd 0.305, floor 0.25); nats with
the true codes over nats with the next story's codes 0.134 / 0.158 / 0.172 (issue bar: at most 0.5); token
accuracy at full depth minus level 1's 0.079 / 0.100 / 0.079 (mean - 2 sd 0.062, floor 0.06).
"""

import pytest
import torch

from hiertok.codes import Codes
from hiertok.data.ideas import IdeaCorpus
from hiertok.evaluate import teacher_forced
from hiertok.tokenizer import IdeaTokenizer

from .recon_world import stories


@pytest.fixture(scope="module")
def held_out(recon_run):
    tok = IdeaTokenizer.from_pretrained(recon_run)
    docs = stories(16, seed=12345)
    return tok, docs, tok.encode(docs)


def sentences(docs):
    return [s if s.endswith(".") else s + "." for d in docs for s in d.split(". ")]


def test_held_out_stories_decode_back_from_their_codes(held_out):
    tok, docs, codes = held_out
    decoded = [s.strip() for doc in tok.decode_ideas(codes) for s in doc]
    truth = sentences(docs)
    assert len(decoded) == len(truth) == 64
    assert sum(a == b for a, b in zip(decoded, truth)) / len(truth) >= 0.25


def test_true_codes_need_at_most_half_the_bits_of_another_storys_codes(held_out):
    tok, docs, codes = held_out
    corpus = IdeaCorpus.build(docs, tok.bpe, tok.segmentation)
    other = torch.roll(torch.arange(codes.num_docs), 1)  # every story decoded from the next one's codes
    true_nats, _ = teacher_forced(tok, corpus, codes)
    other_nats, _ = teacher_forced(tok, corpus, Codes(codes.ids[other], codes.mask, codes.codebook_sizes))
    assert true_nats <= 0.5 * other_nats


def test_full_depth_predicts_tokens_better_than_level_one(held_out):
    tok, docs, codes = held_out
    corpus = IdeaCorpus.build(docs, tok.bpe, tok.segmentation)
    _, full = teacher_forced(tok, corpus, codes)
    _, first = teacher_forced(tok, corpus, codes.prefix(1))
    assert full - first >= 0.06


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_prefix_decodes_from_its_levels_only(held_out, k):
    tok, _, codes = held_out
    before = tok.decode_ideas(codes, levels=k)
    deeper = codes.ids.clone()
    deeper[..., k:] = (deeper[..., k:] + 1) % torch.tensor(codes.codebook_sizes[k:])  # every finer level moved
    assert tok.decode_ideas(Codes(deeper, codes.mask, codes.codebook_sizes), levels=k) == before
    first = codes.ids.clone()
    first[..., 0] = (first[..., 0] + 37) % codes.codebook_sizes[0]
    changed = tok.decode_ideas(Codes(first, codes.mask, codes.codebook_sizes), levels=k)
    flat = [s for d in before for s in d]
    assert sum(a != b for a, b in zip(flat, [s for d in changed for s in d])) >= len(flat) // 4
