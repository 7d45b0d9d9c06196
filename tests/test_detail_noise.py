"""Detail noise swaps only the finer levels, only between ideas with the same gist, only where allowed."""

import pytest
import torch

from decoder.model import DecoderConfig, SpecialIds
from hiertok.autoencoder import IdeaAutoencoder, ModelConfig
from hiertok.data.ideas import IdeaBatch
from hiertok.detail_noise import copyable_partners, swap_details
from hiertok.encoder import EncoderConfig
from hiertok.quantize import MultiLevelQuantizer, QuantizerConfig


@pytest.mark.parametrize("hierarchy", ["matryoshka", "residual"])
def test_swapped_rows_keep_their_gist_and_take_a_same_gist_partners_details(hierarchy):
    extra = {"codebook_sizes": [64, 256]}
    if hierarchy == "residual":
        extra = {"codebook_sizes": [256], "prefix_dist": "uniform"}
    q = MultiLevelQuantizer(QuantizerConfig(levels=4, hierarchy=hierarchy, **extra)).eval()
    torch.manual_seed(0)
    indices = torch.randint(0, 60, (8, 4))
    indices[:4, 0] = 7  # rows 0-3 share a gist; rows 4-7 have gists of their own
    indices[4:, 0] = torch.tensor([10, 11, 12, 13])
    kept = torch.tensor([4, 4, 4, 2, 4, 4, 4, 4])  # row 3 lost levels 3-4 to dropout
    indices[3, 2:] = -1
    vectors = torch.randn(8, q.dim)
    eligible = torch.ones(8, dtype=torch.bool)
    eligible[2] = False
    out, changed = swap_details(q, vectors, indices, kept, eligible, rate=1.0)
    assert changed.tolist() == [True, True, False, True] + [False] * 4
    assert torch.equal(out[~changed], vectors[~changed])
    for row in (0, 1):  # partners: the other rows with gist 7 and 4 levels (row 2 lends though it does not change)
        others = [r for r in (0, 1, 2) if r != row]
        spliced = [torch.cat([indices[row, :k], indices[o, k:]]) for k in range(1, 4) for o in others]
        assert any(torch.allclose(out[row], q.decode_indices(s[None])[0]) for s in spliced)
        assert not torch.allclose(out[row], q.decode_indices(indices[row : row + 1])[0])
    # the cut row takes level 2 from a partner and stays cut: levels 3-4 absent, as its plan would be
    assert any(
        torch.allclose(out[3], q.decode_indices(torch.stack([indices[3, 0], indices[o, 1]])[None])[0])
        for o in (0, 1, 2)
    )
    fixed, changed = swap_details(q, vectors, indices, kept, eligible, rate=1.0, first=3)  # levels 3..k
    assert changed.tolist() == [True, True] + [False] * 6  # row 3 has no level 3 to swap
    for row in (0, 1):
        others = [r for r in (0, 1, 2) if r != row]
        spliced = [torch.cat([indices[row, :2], indices[o, 2:]]) for o in others]
        assert any(torch.allclose(fixed[row], q.decode_indices(s[None])[0]) for s in spliced)
    alone = kept.clone()
    alone[:3] = 1  # a gist-only row has no detail to swap, and rows cut shorter do not lend to row 3
    _, changed = swap_details(q, vectors, indices, alone, eligible, rate=1.0)
    assert not changed.any()
    none, changed = swap_details(q, vectors, indices, kept, eligible, rate=0.0)
    assert torch.equal(none, vectors) and not changed.any()


def test_detail_noise_trains_the_decoder_on_swapped_details_only_where_it_sees_a_story():
    cfg = ModelConfig(
        encoder=EncoderConfig(dim=32, depth=1),
        quantizer=QuantizerConfig(levels=4, codebook_sizes=[16, 256]),  # few gists: partners are common
        decoder=DecoderConfig(dim=32, depth=1, max_len=16, context=2, context_dropout=0.0, detail_noise=1.0),
    )
    torch.manual_seed(0)
    model = IdeaAutoencoder(cfg, vocab_size=40, special=SpecialIds(pad=0, bos=1, eos=2))
    tokens = torch.randint(3, 40, (12, 6))
    context = torch.tensor([[-1, -1]] * 2 + [[i - 1, i - 2] for i in range(4, 12)])  # targets 2..11
    batch = IdeaBatch(
        tokens, torch.ones(12, 6, dtype=torch.bool), torch.arange(2, 12), context, context, torch.arange(12)
    )
    seen = []
    model.decoder_condition = lambda *args: seen.append(args) or IdeaAutoencoder.decoder_condition(model, *args)
    model.train()(batch).loss.backward()
    targets, codes, own = seen[0][0], seen[0][2], seen[0][7]
    differs = (own != codes[targets]).any(1)
    assert differs.any()
    assert not differs[:2].any()  # the first two targets have no earlier idea: never changed
    with pytest.raises(ValueError, match="detail_noise"):
        DecoderConfig(detail_noise=1.5).validate()
    with pytest.raises(ValueError, match="detail_noise_from"):
        DecoderConfig(detail_noise_from=1).validate()
    cfg.decoder.detail_noise_from = 5
    with pytest.raises(ValueError, match="past the last level"):
        IdeaAutoencoder(cfg, vocab_size=40, special=SpecialIds(pad=0, bos=1, eos=2))


def test_detail_noise_keeps_a_cut_idea_cut():
    """An idea cut to k levels by level dropout takes a partner's levels 2..k only: it stays a k-level vector, as
    the plan of a k-level planner is, instead of turning into a full-depth one."""
    cfg = ModelConfig(
        encoder=EncoderConfig(dim=32, depth=1),
        quantizer=QuantizerConfig(levels=4, codebook_sizes=[16, 256], level_dropout=1.0, prefix_dist="uniform"),
        decoder=DecoderConfig(dim=32, depth=1, max_len=16, context=2, context_dropout=0.0, detail_noise=1.0),
    )
    torch.manual_seed(0)
    model = IdeaAutoencoder(cfg, vocab_size=40, special=SpecialIds(pad=0, bos=1, eos=2))
    tokens = torch.randint(3, 40, (24, 6))
    context = torch.tensor([[-1, -1]] * 2 + [[i - 1, i - 2] for i in range(4, 24)])
    batch = IdeaBatch(
        tokens, torch.ones(24, 6, dtype=torch.bool), torch.arange(2, 24), context, context, torch.arange(24)
    )
    seen = []
    model.decoder_condition = lambda *args: seen.append(args) or IdeaAutoencoder.decoder_condition(model, *args)
    model.train()(batch)
    targets, codes, kept, own = seen[0][0], seen[0][2], seen[0][6], seen[0][7]
    changed = (own != codes[targets]).any(1)
    assert changed.any() and bool((kept[targets] < 4).all())  # every idea cut, some swapped
    assert torch.equal(model.quantizer.mask_levels(own, kept[targets]), own)  # still absent past its cut


def test_copyable_partners_are_those_whose_differences_the_story_shows():
    """Target 0 "Mia gave the red kite" (story: Mia, red) may take the details of "Tom gave the red kite" and
    "Tom gave the blue kite" (every token of 0 they lack, Mia, red, the story shows) but not of "Mia gave the red
    ball" (kite is untold) nor of itself; padding and ideas not shown count for nothing."""
    mia, tom, gave, the, red, blue, kite, ball, pad = range(1, 10)
    targets = torch.tensor(
        [
            [mia, gave, the, red, kite],
            [tom, gave, the, red, kite],
            [tom, gave, the, blue, kite],
            [mia, gave, the, red, ball],
            [mia, gave, the, red, kite],
        ]
    )
    tmask = torch.ones_like(targets, dtype=torch.bool)
    targets = torch.cat([targets, torch.full((5, 1), pad)], 1)  # a padded column, never a token
    tmask = torch.cat([tmask, torch.zeros(5, 1, dtype=torch.bool)], 1)
    story = torch.tensor([[mia, red, pad], [kite, ball, pad]])  # two earlier ideas
    context = story.expand(5, 2, 3).clone()
    cmask = torch.ones(5, 2, 3, dtype=torch.bool)
    cmask[:, :, 2] = False
    cmask[:, 1] = False  # the second earlier idea is not shown: kite and ball are not told
    allowed = copyable_partners(targets, tmask, context, cmask)
    assert allowed[0].tolist() == [False, True, True, False, False]  # not itself, nor its twin (row 4)
    assert allowed[3].tolist() == [False, False, False, False, False]  # ball is never told
    assert allowed[1].tolist() == [False, False, True, False, False]  # only red differs from row 2; tom is untold
    cmask[:, 1, :2] = True  # now the story shows kite and ball too
    allowed = copyable_partners(targets, tmask, context, cmask)
    assert allowed[3].tolist() == [True, True, True, False, True]


def test_copyable_detail_noise_swaps_only_with_allowed_partners():
    q = MultiLevelQuantizer(QuantizerConfig(levels=4, codebook_sizes=[64, 256])).eval()
    torch.manual_seed(0)
    indices = torch.randint(0, 60, (4, 4))
    indices[:, 0] = 7  # one gist: any row could lend to any other
    kept, vectors = torch.full((4,), 4), torch.randn(4, q.dim)
    allowed = torch.zeros(4, 4, dtype=torch.bool)
    allowed[0, 2] = True  # row 0 may take row 2's details only; the others none
    for _ in range(5):
        out, changed = swap_details(q, vectors, indices, kept, torch.ones(4, dtype=torch.bool), 1.0, 2, allowed)
        assert changed.tolist() == [True, False, False, False]
        assert torch.allclose(out[0], q.decode_indices(torch.cat([indices[0, :1], indices[2, 1:]])[None])[0])


def test_copyable_detail_noise_reaches_the_decoder_in_training():
    """With `detail_noise_copyable` a target whose story repeats it word for word (every token told) takes a
    same-gist partner's details; one whose story tells something else, or nothing, keeps its own."""
    cfg = ModelConfig(
        encoder=EncoderConfig(dim=32, depth=1),
        quantizer=QuantizerConfig(levels=4, codebook_sizes=[16, 256]),  # few gists: partners are common
        decoder=DecoderConfig(
            dim=32, depth=1, max_len=16, context=1, context_dropout=0.0, detail_noise=1.0, detail_noise_copyable=True
        ),
    )
    torch.manual_seed(0)
    model = IdeaAutoencoder(cfg, vocab_size=40, special=SpecialIds(pad=0, bos=1, eos=2))
    model.sample_context = lambda context: (context, context >= 0)  # every earlier idea's text known
    tokens = torch.randint(3, 40, (16, 6))
    tokens[8:12] = tokens[:4]  # rows 8..11 repeat rows 0..3: their story (the row 8 before) tells every token
    context = torch.tensor([[r - 8] for r in range(8, 16)] + [[-1]] * 8)
    targets = torch.cat([torch.arange(8, 16), torch.arange(0, 8)])
    batch = IdeaBatch(tokens, torch.ones(16, 6, dtype=torch.bool), targets, context, context, torch.arange(16))
    seen = []
    model.decoder_condition = lambda *args: seen.append(args) or IdeaAutoencoder.decoder_condition(model, *args)
    model.train()(batch)
    codes, own = seen[0][2], seen[0][7]
    differs = (own != codes[targets]).any(1)
    assert differs[:4].any()  # told targets with a same-gist partner are swapped
    assert not differs[4:].any()  # targets whose story does not tell them never (rows 12..15), nor untold ones
