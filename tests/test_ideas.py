"""Ideas from documents, the idea corpus, batches with earlier ideas, and step-addressed batches."""

import numpy as np
import pytest
import torch

from hiertok.config import TrainConfig
from hiertok.data.bpe import BPE
from hiertok.data.ideas import IdeaCollator, IdeaCorpus, Segmentation, join_ideas, segment_document
from hiertok.data.synthetic import StoryWorld
from hiertok.training import StepBatches, lr_lambda

STORIES = StoryWorld().generate(60, seed=3)


@pytest.fixture(scope="module")
def bpe() -> BPE:
    return BPE.train([s.text for s in STORIES], 300)


SEGMENTATIONS = [
    Segmentation(),
    Segmentation("chunk", chunk_size=5),
    Segmentation(max_idea_tokens=4),
    Segmentation(lead_space=True),
    Segmentation("chunk", chunk_size=5, lead_space=True),
]


@pytest.mark.parametrize("seg", SEGMENTATIONS)
def test_segmentation_is_lossless(bpe, seg):
    text = "Tom ran home. " + "word " * 200 + "\n\nLast one! 🙂 Done?"
    ideas = segment_document(text, bpe, seg)
    assert join_ideas(bpe, seg, ideas) == text
    for other in (" Tom", "  \tTom ran.\n", "Tom"):  # a leading space of the text's own is kept
        assert join_ideas(bpe, seg, segment_document(other, bpe, seg)) == other
    assert all(0 < len(i) for i in ideas)
    if seg.segmenter == "chunk":
        assert all(len(i) == 5 for i in ideas[:-1])
    else:
        assert all(len(i) <= seg.max_idea_tokens for i in ideas)
    assert segment_document("   \n ", bpe, seg) == []


def test_a_sentence_has_the_same_tokens_first_in_a_document_or_later(bpe):
    seg = Segmentation(lead_space=True)
    first, later = segment_document("Mia ran home. Mia sat down.", bpe, seg)
    assert bpe.decode(first) == " Mia ran home." and later[:1] == first[:1]  # " Mia" either way
    assert segment_document("Mia ran.", bpe, seg, start=False) == segment_document("Mia ran.", bpe, Segmentation())


def test_synthetic_stories_give_one_idea_per_labelled_sentence(bpe):
    corpus = IdeaCorpus.build([s.text for s in STORIES], bpe, Segmentation(), [s.events for s in STORIES])
    assert corpus.num_ideas == sum(len(s.sentences) for s in STORIES)
    assert corpus.events == [e for s in STORIES for e in s.events]
    first = STORIES[0]
    assert [bpe.decode(corpus.idea(i).tolist()) for i in range(len(first.sentences))] == [
        (" " if i else "") + s for i, s in enumerate(first.sentences)
    ]


def test_previous_ideas_stay_inside_documents(bpe):
    docs = ["Tom ran. Amy sat. Dogs bark.", "Cats nap.", "Sun rose. Birds sang."]
    corpus = IdeaCorpus.build(docs, bpe, Segmentation())
    assert corpus.doc_offsets.tolist() == [0, 3, 4, 6]
    assert corpus.previous(2).tolist() == [[-1, -1], [0, -1], [1, 0], [-1, -1], [-1, -1], [4, -1]]
    batch = IdeaCollator(corpus, bpe.pad_id, context=1)([2, 4])
    rows = batch.targets.tolist()
    assert len(batch.tokens) == 3  # ideas 1, 2, 4
    for r, idea in zip(rows, [2, 4]):
        assert bpe.decode(batch.tokens[r][batch.mask[r]].tolist()) == bpe.decode(corpus.idea(idea).tolist())
    assert batch.context[1, 0].item() == -1
    before = batch.context[0, 0].item()
    assert bpe.decode(batch.tokens[before][batch.mask[before]].tolist()) == " Amy sat."


def test_collator_previous_ideas_are_the_ones_before_in_the_same_document(bpe):
    docs = ["Tom ran. Amy sat. Dogs bark.", "Cats nap.", "Sun rose. Birds sang."]
    corpus = IdeaCorpus.build(docs, bpe, Segmentation())
    batch = IdeaCollator(corpus, bpe.pad_id, previous=2)([2, 3, 5])
    assert batch.context.shape == (3, 0) and batch.previous.shape == (3, 2)

    def text(row: int) -> str:
        return bpe.decode(batch.tokens[row][batch.mask[row]].tolist()).strip()

    assert [text(r) for r in batch.targets.tolist()] == ["Dogs bark.", "Cats nap.", "Birds sang."]
    assert len(batch.tokens) == 6  # the targets and their previous ideas 0, 1 and 4
    assert [text(r) for r in batch.previous[0].tolist()] == ["Amy sat.", "Tom ran."]  # nearest first
    assert batch.previous[1].tolist() == [-1, -1]  # a document start
    assert text(batch.previous[2, 0].item()) == "Sun rose." and batch.previous[2, 1].item() == -1


def test_step_batches_are_deterministic_and_shard_one_global_batch():
    one = StepBatches(100, 8, seed=1)
    assert np.array_equal(one.indices(3), StepBatches(100, 8, seed=1).indices(3))
    r0, r1 = StepBatches(100, 4, seed=1, rank=0, world=2), StepBatches(100, 4, seed=1, rank=1, world=2)
    assert np.array_equal(np.concatenate([r0.indices(3), r1.indices(3)]), one.indices(3))
    epoch = np.concatenate([one.indices(s) for s in range(one.per_epoch)])
    assert len(set(epoch.tolist())) == len(epoch)  # no repeats within an epoch
    assert not np.array_equal(one.indices(0), one.indices(one.per_epoch))  # reshuffled next epoch
    with pytest.raises(ValueError, match="global batch"):
        StepBatches(10, 8, seed=0, world=2)


def test_length_bucketed_batches_cover_the_epoch_with_little_padding():
    lengths = np.random.default_rng(0).integers(1, 60, size=1000)
    plain = StepBatches(1000, 16, seed=2)
    bucketed = StepBatches(1000, 16, seed=2, lengths=lengths, pool=10)
    # 62 batches per epoch: six full pools and a short last one, over two epochs.
    for epoch in range(2):
        steps = range(epoch * bucketed.per_epoch, (epoch + 1) * bucketed.per_epoch)
        items = np.concatenate([bucketed.indices(s) for s in steps])
        assert len(set(items.tolist())) == len(items) == bucketed.per_epoch * 16
        assert set(items.tolist()) == set(np.concatenate([plain.indices(s) for s in steps]).tolist())

    def padded(plan):
        return sum(lengths[plan.indices(s)].max() * 16 for s in range(plan.per_epoch))

    assert padded(bucketed) < 0.7 * padded(plain)  # pool 10: the mean batch max falls from ~57 to ~33
    assert np.array_equal(bucketed.indices(7), StepBatches(1000, 16, seed=2, lengths=lengths, pool=10).indices(7))
    r0 = StepBatches(1000, 8, seed=2, rank=0, world=2, lengths=lengths, pool=10)
    r1 = StepBatches(1000, 8, seed=2, rank=1, world=2, lengths=lengths, pool=10)
    assert np.array_equal(np.concatenate([r0.indices(5), r1.indices(5)]), bucketed.indices(5))


def test_lr_schedule_warms_up_then_decays():
    f = lr_lambda(TrainConfig(warmup_steps=10, max_steps=110, min_lr_ratio=0.1))
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.55) and f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)
    values = [f(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_pad_mask_matches_lengths(bpe):
    corpus = IdeaCorpus.build(["Tom ran. Ccc ddd eee fff."], bpe, Segmentation())
    batch = IdeaCollator(corpus, bpe.pad_id, 0)([0, 1])
    assert batch.mask.sum(1).tolist() == [len(corpus.idea(0)), len(corpus.idea(1))]
    assert torch.all(batch.tokens[~batch.mask] == bpe.pad_id)
