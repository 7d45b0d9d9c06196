"""The hierarchical codelength is a lossless code: recomputed here the way a receiver decodes it, one idea
after another with nothing from the future, it must equal what `hiertok eval codelength` reports.

The recomputation shares no scoring code with hiertok/codelength.py: the planner's bits come from its
depth head stepped level by level (as beam search steps it) with no goal shown, the decoder's from its
cached step-by-step generation path (as `generate` runs it), not from the teacher-forced scorers.
"""

import math

import pytest
import torch

from hiertok.codelength import corpus_bits, idea_bits
from hiertok.codes import Codes
from hiertok.data.ideas import IdeaCorpus
from hiertok.data.synthetic import StoryWorld
from hiertok.story_decoding import grid_previous


@torch.no_grad()
def receiver_bits(pipe, doc: str) -> tuple[list[float], list[float], float]:
    """Per idea of one document: planner bits of its codes, decoder bits of its tokens + EOS; and END's bits."""
    tok, planner = pipe.tokenizer, pipe.planner.eval()
    model, head, vocab = tok.model.eval(), planner.head, planner.vocab
    ideas = tok.split(doc)
    codes = tok.encode_ideas(ideas)[:, : pipe.levels]  # (n, L)
    ids = vocab.to_ids(codes)  # (n, L) unified ids
    states = planner.states(ids[None], None, None, None)[0]  # (n + 1, D): no goal; state t predicts idea t
    code_bits = []
    for t in range(len(ideas)):
        state, nats = states[t : t + 1], 0.0
        for level in range(pipe.levels):
            logp = head.logits(state, level).log_softmax(-1)[0]
            nats -= float(logp[ids[t, level] - vocab.level_slice(level).start])
            state = head.advance(state, level, ids[t, level : level + 1])
        code_bits.append(nats / math.log(2))
    end_bits = -float(head.logits(states[-1:], 0).log_softmax(-1)[0, 0]) / math.log(2)  # END: level 0's id 0

    vectors = model.quantizer.decode_indices(codes)
    mask = torch.ones(1, len(ideas), dtype=torch.bool)
    context = grid_previous(mask, model.decoder.cfg.context)
    width = max(len(i) for i in ideas)
    tokens = torch.full((len(ideas), width), tok.bpe.pad_id, dtype=torch.long)
    for i, idea in enumerate(ideas):
        tokens[i, : len(idea)] = torch.tensor(idea)
    known = torch.ones_like(context, dtype=torch.bool)  # the receiver has every earlier idea's text
    reads_state = bool(model.decoder.cfg.state_dim)  # a decoder that reads the planner's state before its idea
    token_bits = []
    for t, idea in enumerate(ideas):
        cond = model.decoder_condition(
            torch.tensor([t]),
            context[t : t + 1],
            vectors,
            tokens,
            tokens != tok.bpe.pad_id,
            known[t : t + 1],
            state=states[t : t + 1] if reads_state else None,
        )
        seq, cache, nats = torch.tensor([[model.decoder.special.bos]]), None, 0.0
        for y in [*idea, model.decoder.special.eos]:
            logits, cache = model.decoder(seq, cond, cache=cache)
            nats -= float(logits[0, -1].float().log_softmax(-1)[y])
            seq = torch.cat([seq, torch.tensor([[y]])], dim=1)
        token_bits.append(nats / math.log(2))
    return code_bits, token_bits, end_bits


DOCS = [" ".join(s.sentences[:4]) for s in StoryWorld().generate(2, seed=21)]


def test_the_reported_bits_are_what_a_receiver_decodes_with(context_pipe):
    reported_bits_are_the_receivers(context_pipe)


def test_a_decoder_that_reads_the_planners_state_is_coded_losslessly(state_pipe):
    reported_bits_are_the_receivers(state_pipe)
    a_later_idea_changes_no_earlier_bits(state_pipe)


def reported_bits_are_the_receivers(any_pipe) -> None:
    bits = idea_bits(any_pipe, DOCS)
    ideas = [len(any_pipe.tokenizer.split(d)) for d in DOCS]
    assert len(bits.code_bits) == len(bits.token_bits) == sum(ideas) == bits.doc_offsets[-1]
    code, token, end = [], [], 0.0
    for doc in DOCS:
        c, t, e = receiver_bits(any_pipe, doc)
        code, token, end = code + c, token + t, end + e
    assert bits.code_bits == pytest.approx(code, rel=1e-4, abs=1e-3)
    assert bits.token_bits == pytest.approx(token, rel=1e-4, abs=1e-3)
    assert bits.end_bits == pytest.approx(end, rel=1e-4, abs=1e-3)
    assert bits.total == pytest.approx(sum(code) + sum(token) + end, rel=1e-4)


def test_a_later_idea_changes_no_earlier_bits(context_pipe):
    a_later_idea_changes_no_earlier_bits(context_pipe)


def a_later_idea_changes_no_earlier_bits(context_pipe) -> None:
    tok = context_pipe.tokenizer
    corpus = IdeaCorpus.build(DOCS[:1], tok.bpe, tok.segmentation)
    codes = tok.encode(DOCS[:1])
    base = corpus_bits(context_pipe, corpus, codes)
    # The last idea's codes changed, its tokens kept: earlier planner bits stay, its own move.
    ids = codes.ids.clone()
    ids[0, -1] = (ids[0, -1] + 1) % torch.tensor(codes.codebook_sizes)
    moved = corpus_bits(context_pipe, corpus, Codes(ids, codes.mask, codes.codebook_sizes))
    assert moved.code_bits[:-1] == pytest.approx(base.code_bits[:-1], rel=1e-5, abs=1e-4)
    assert abs(moved.code_bits[-1] - base.code_bits[-1]) > 1e-3
    # The codes kept, the last idea's tokens changed: earlier token bits stay, its own move.
    other = IdeaCorpus.build(
        [DOCS[0].rsplit(". ", 1)[0] + ". Tired but happy, Rex fell asleep."], tok.bpe, tok.segmentation
    )
    assert other.num_ideas == corpus.num_ideas
    retold = corpus_bits(context_pipe, other, codes)
    assert retold.token_bits[:-1] == pytest.approx(base.token_bits[:-1], rel=1e-5, abs=1e-4)
    assert abs(retold.token_bits[-1] - base.token_bits[-1]) > 1e-3
    assert retold.code_bits == pytest.approx(base.code_bits, rel=1e-5, abs=1e-4)


def test_a_single_idea_is_scored_and_no_text_is_refused(context_pipe):
    bits = idea_bits(context_pipe, ["Tom ran."])
    assert len(bits.code_bits) == len(bits.token_bits) == 1 and bits.total > 0
    with pytest.raises(ValueError, match="^no text to score: the documents are empty$"):
        idea_bits(context_pipe, ["", "  "])


def test_each_ideas_nats_and_correct_tokens_are_its_own_whatever_the_batch(context_pipe):
    """idea_nats scores ideas in batches: every idea's nats and teacher-forced correct-token count must be what it
    gets alone (a count summed over the batch, or a batch's nats spread, would differ)."""
    from hiertok.evaluate import idea_nats

    tok = context_pipe.tokenizer
    corpus = IdeaCorpus.build(DOCS, tok.bpe, tok.segmentation)
    codes = tok.encode(DOCS)
    nats, correct = idea_nats(tok, corpus, codes)
    one_nats, one_correct = idea_nats(tok, corpus, codes, batch_size=1)
    assert torch.equal(correct, one_correct)
    assert nats.tolist() == pytest.approx(one_nats.tolist(), rel=1e-4, abs=1e-4)
    lengths = torch.from_numpy(corpus.idea_offsets[1:] - corpus.idea_offsets[:-1]) + 1  # tokens and EOS
    assert bool((correct <= lengths).all()) and bool((nats > 0).all())
