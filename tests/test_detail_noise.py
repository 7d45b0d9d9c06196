"""Detail noise swaps only the finer levels, only between ideas with the same gist, only where allowed."""

import pytest
import torch

from decoder.model import DecoderConfig, SpecialIds
from hiertok.autoencoder import IdeaAutoencoder, IdeaBatch, ModelConfig
from hiertok.detail_noise import swap_details
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
    indices[3, 2:] = -1  # row 3 lost levels to dropout: it neither changes nor lends
    vectors = torch.randn(8, q.dim)
    eligible = torch.ones(8, dtype=torch.bool)
    eligible[2] = False
    out, changed = swap_details(q, vectors, indices, eligible, rate=1.0)
    assert changed.tolist() == [True, True] + [False] * 6
    assert torch.equal(out[~changed], vectors[~changed])
    for row in (0, 1):  # partners: the other full rows with gist 7 (row 2 lends though it does not change)
        others = [r for r in (0, 1, 2) if r != row]
        spliced = [torch.cat([indices[row, :k], indices[o, k:]]) for k in range(1, 4) for o in others]
        assert any(torch.allclose(out[row], q.decode_indices(s[None])[0]) for s in spliced)
        assert not torch.allclose(out[row], q.decode_indices(indices[row : row + 1])[0])
    fixed, changed = swap_details(q, vectors, indices, eligible, rate=1.0, first=2)  # every level after the gist
    for row in (0, 1):
        others = [r for r in (0, 1, 2) if r != row]
        spliced = [torch.cat([indices[row, :1], indices[o, 1:]]) for o in others]
        assert any(torch.allclose(fixed[row], q.decode_indices(s[None])[0]) for s in spliced)
    none, changed = swap_details(q, vectors, indices, eligible, rate=0.0)
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
