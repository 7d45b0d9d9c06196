"""Quantizer round trips for every type x hierarchy, prefix decoding, config errors."""

import pytest
import torch

from hiertok.quantize import HIERARCHIES, KINDS, MultiLevelQuantizer, QuantizerConfig, validate

SIZES = {"fsq": [1000], "vq": [32], "lfq": [64]}


def make(kind: str, hierarchy: str, levels: int = 4, **kw) -> MultiLevelQuantizer:
    torch.manual_seed(0)
    return MultiLevelQuantizer(
        QuantizerConfig(
            **{"prefix_dist": "uniform" if hierarchy == "residual" else "geometric", **kw},
            kind=kind,
            hierarchy=hierarchy,
            levels=levels,
            codebook_sizes=SIZES[kind],
            residual_dim=24,
        )
    )


@pytest.mark.parametrize("hierarchy", HIERARCHIES)
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_and_prefixes(kind, hierarchy):
    q = make(kind, hierarchy)
    z = torch.randn(256, q.dim)
    q.train()
    out = q(z)
    (out.quantized.square().sum() + out.aux_loss).backward()  # gradients flow through the straight-through path
    q.eval()
    with torch.no_grad():
        out = q(z)
        assert out.indices.shape == (256, 4) and out.indices.dtype == torch.long
        assert (out.indices >= 0).all()
        for level, size in enumerate(q.codebook_sizes):
            assert int(out.indices[:, level].max()) < size
        assert torch.allclose(q.decode_indices(out.indices), out.quantized, atol=1e-5)
        prev_err = None
        for k in range(1, 5):
            part = q.decode_indices(out.indices[:, :k])
            assert part.shape == out.quantized.shape
            if hierarchy == "residual":  # residual prefixes approximate the vector better with each level
                err = (part - out.quantized).square().mean().item()
                assert prev_err is None or err <= prev_err + 1e-6
                prev_err = err


def test_matryoshka_prefix_keeps_first_slices_and_marks_the_rest_absent():
    q = make("fsq", "matryoshka")
    with torch.no_grad():
        q.absent.fill_(7.0)
        q.eval()
        out = q(torch.randn(8, q.dim))
        part = q.decode_indices(out.indices[:, :2])
    d = sum(q.level_dims[:2])
    assert torch.allclose(part[:, :d], out.quantized[:, :d])
    assert torch.all(part[:, d:] == 7.0)


def test_level_dropout_cuts_a_prefix_per_sample():
    q = make("fsq", "matryoshka", level_dropout=1.0)
    q.train()
    out = q(torch.randn(512, q.dim))
    assert out.kept_levels.min() >= 1 and out.kept_levels.max() <= 3
    assert len(out.kept_levels.unique()) == 3


def test_the_last_codebook_size_repeats_for_the_remaining_levels():
    assert validate(QuantizerConfig(levels=4, codebook_sizes=[256, 1000])) == [256, 1000, 1000, 1000]
    assert MultiLevelQuantizer(QuantizerConfig(levels=3, codebook_sizes=[64, 1000])).codebook_sizes == [64, 1000, 1000]


def test_geometric_prefix_lengths_halve_with_each_level():
    torch.manual_seed(0)
    q = make("fsq", "matryoshka", levels=6, level_dropout=1.0, prefix_dist="geometric")
    q.train()
    kept = q(torch.randn(20000, q.dim)).kept_levels
    counts = torch.bincount(kept, minlength=6)[1:6].float()
    # P(k) ~ 2^-k over k = 1..5: each count about half the one before it.
    assert torch.allclose(counts[1:] / counts[:-1], torch.full((4,), 0.5), atol=0.08)


def test_a_share_of_samples_keeps_exactly_the_planned_levels():
    torch.manual_seed(0)
    q = make("fsq", "matryoshka", levels=6, level_dropout=0.3, plan_levels=4, plan_levels_dropout=0.2)
    q.train()
    kept = q(torch.randn(20000, q.dim)).kept_levels
    share = torch.bincount(kept, minlength=7).float() / len(kept)
    # 30% cut geometrically (P(k) = 2^-k * 32/31: 2/31 of them keep 4), 20% more at 4 levels, 50% keep all 6.
    assert abs(share[4] - (0.2 + 0.3 * 2 / 31)) < 0.015 and abs(share[6] - 0.5) < 0.015
    assert abs(share[1] - 0.3 * 16 / 31) < 0.015
    q.eval()
    assert (q(torch.randn(64, q.dim)).kept_levels == 6).all()  # no cut outside training


def test_gradient_reaches_the_input_for_each_level():
    q = make("fsq", "matryoshka", level_dropout=0.0)
    z = torch.randn(16, q.dim, requires_grad=True)
    q.train()
    q(z).quantized.sum().backward()
    assert (z.grad.abs().sum(0) > 0).all()


def test_out_of_range_codes_are_rejected():
    q = make("fsq", "matryoshka")
    with pytest.raises(ValueError, match="out of range for level 2"):
        q.decode_indices(torch.tensor([[0, 1000]]))
    with pytest.raises(ValueError, match="1..4 levels"):
        q.decode_indices(torch.zeros((1, 5), dtype=torch.long))


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(kind="pq"), "kind"),
        (dict(hierarchy="flat"), "hierarchy"),
        (dict(levels=0), "levels"),
        (dict(codebook_sizes=[1000] * 5), "5 entries"),
        (dict(codebook_sizes=[]), "0 entries"),
        (dict(codebook_sizes=[999]), "FSQ codebook size"),
        (dict(kind="lfq", codebook_sizes=[100]), "power of 2"),
        (dict(hierarchy="residual", levels=2, codebook_sizes=[1000, 4096]), "single size"),
        (dict(level_dropout=1.5), "level_dropout"),
        (dict(prefix_dist="zipf"), "prefix_dist"),
        (dict(hierarchy="residual", codebook_sizes=[1000], prefix_dist="geometric"), "matryoshka"),
        (dict(plan_levels=4), "plan_levels"),  # 4 of 4 levels: nothing to cut
        (dict(plan_levels=-1), "plan_levels"),
        (dict(hierarchy="residual", codebook_sizes=[1000], prefix_dist="uniform", plan_levels=2), "plan_levels"),
        (dict(level_dropout=0.8, plan_levels=2, plan_levels_dropout=0.3), "plan_levels_dropout"),
        (dict(plan_levels_dropout=-0.1), "plan_levels_dropout"),
        (dict(codebook_sizes=[1000], fsq_levels=[16, 16, 4]), r"must be \[1024\]"),
        (dict(kind="vq", codebook_sizes=[1024], fsq_levels=[16, 16, 4]), "kind fsq"),
        (dict(codebook_sizes=[16], fsq_levels=[16, 1]), "values >= 2"),
    ],
)
def test_invalid_configs(kw, msg):
    cfg = QuantizerConfig(**{**dict(levels=4), **kw})
    with pytest.raises(ValueError, match=msg):
        validate(cfg)


def test_per_level_codebook_sizes_in_matryoshka():
    q = MultiLevelQuantizer(QuantizerConfig(levels=3, codebook_sizes=[256, 1000, 4096]))
    assert q.codebook_sizes == [240, 1000, 4375]
    q.eval()
    with torch.no_grad():
        out = q(torch.randn(64, q.dim))
    assert torch.allclose(q.decode_indices(out.indices), out.quantized, atol=1e-5)


@pytest.mark.parametrize("hierarchy", HIERARCHIES)
def test_fsq_levels_set_every_levels_dimensions(hierarchy):
    cfg = QuantizerConfig(levels=3, codebook_sizes=[1024], fsq_levels=[16, 16, 4], hierarchy=hierarchy)
    cfg.prefix_dist = "uniform"
    q = MultiLevelQuantizer(cfg)
    assert q.codebook_sizes == [1024] * 3
    if hierarchy == "matryoshka":
        assert q.level_dims == [3, 3, 3]
    q.eval()
    with torch.no_grad():
        out = q(torch.randn(512, q.dim) * 3)
    assert int(out.indices.max()) < 1024 and int(out.indices.max()) >= 1000  # beyond the table's 1000 codes
    assert torch.allclose(q.decode_indices(out.indices), out.quantized, atol=1e-5)
