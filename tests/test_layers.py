"""The shared attention stack: every model's `dim_head` reaches its attention layers."""

import pytest
import torch

from decoder.model import DecoderConfig, IdeaDecoder, SpecialIds
from hiertok.encoder import EncoderConfig, IdeaEncoder
from hiertok.flat_lm import FlatLM, FlatLMConfig
from planner.model import Planner, PlannerModelConfig
from planner.vocab import CodeVocab

BUILDERS = {
    "encoder": lambda h: IdeaEncoder(EncoderConfig(dim=32, depth=1, heads=2, dim_head=h), 40, 16, 8),
    "decoder": lambda h: IdeaDecoder(
        DecoderConfig(dim=32, depth=1, heads=2, dim_head=h, context=2), 40, 8, SpecialIds(0, 1, 2)
    ),
    "planner": lambda h: Planner(PlannerModelConfig(dim=32, depth=1, heads=2, dim_head=h), CodeVocab((5, 7))),
    "flat_lm": lambda h: FlatLM(FlatLMConfig(dim=32, depth=1, heads=2, dim_head=h, context=16), 40),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("dim_head", [8, 64])
def test_every_attention_layer_has_heads_times_dim_head(name, dim_head):
    model = BUILDERS[name](dim_head)
    widths = {m.weight.shape[0] for n, m in model.named_modules() if n.endswith("to_q")}
    assert widths == {2 * dim_head}


def test_a_head_width_below_one_is_refused():
    with pytest.raises(ValueError, match="width of one attention head"):
        BUILDERS["encoder"](0)


def test_the_padding_fill_is_einx_where_and_other_calls_reach_einx():
    """x-transformers' padding `einx.where` runs as one masked_fill (hiertok/layers.py): the same tensor."""
    import einx
    import x_transformers.continuous
    import x_transformers.x_transformers

    import hiertok.layers  # noqa: F401 - installs the fill

    shim = x_transformers.x_transformers.einx
    assert shim is x_transformers.continuous.einx and shim is not einx
    torch.manual_seed(0)
    mask, values = torch.rand(3, 5) > 0.4, torch.randn(3, 5, 4)
    for fill in (0.0, -1, 2.5):
        expected = einx.where("b n, b n d, -> b n d", mask, values, fill)
        assert torch.equal(shim.where("b n, b n d, -> b n d", mask, values, fill), expected)
    other = shim.where("b n, b n d, b n d -> b n d", mask, values, -values)  # not the padding pattern: einx's
    assert torch.equal(other, torch.where(mask[..., None], values, -values))
    assert shim.subtract is einx.subtract


def test_a_padded_batch_attends_as_each_row_alone():
    """With the fill in place, a row's outputs do not depend on the padding of the rows batched with it."""
    model = BUILDERS["encoder"](16).eval()
    short, long = torch.randint(4, 40, (1, 3)), torch.randint(4, 40, (1, 7))
    batch = torch.zeros(2, 7, dtype=torch.long)
    batch[0, :3], batch[1] = short[0], long[0]
    mask = batch != 0
    mask[0, :3] = True
    with torch.no_grad():
        alone = model.net(short, mask=torch.ones_like(short, dtype=torch.bool))
        together = model.net(batch, mask=mask)
    assert torch.allclose(together[0, :3], alone[0], atol=1e-5)


def test_abs_positions_add_learned_positions_that_move_the_output():
    """`abs_positions` adds the wrapper's learned positions beside rotary (x-transformers drops them unless the
    layers allow it): a constant input then gives different hidden states at different places; without them
    the embedding table does not exist."""
    torch.manual_seed(0)
    tokens, mask = torch.full((1, 12), 5), torch.ones(1, 12, dtype=torch.bool)
    plain = IdeaEncoder(EncoderConfig(dim=32, depth=1, heads=2), 40, 16, 8)
    assert not any("pos_emb.emb" in k for k in plain.state_dict())
    enc = IdeaEncoder(EncoderConfig(dim=32, depth=1, heads=2, abs_positions=True), 40, 16, 8)
    table = enc.net.pos_emb.emb.weight
    enc(tokens, mask).sum().backward()
    assert table.grad is not None and table.grad.abs().sum() > 0
    dec = IdeaDecoder(
        DecoderConfig(dim=32, depth=1, heads=2, max_len=16, abs_positions=True), 40, 8, SpecialIds(0, 1, 2)
    )
    cond = dec.condition(torch.zeros(1, 8))
    with torch.no_grad():
        hidden, _ = dec._hidden(torch.full((1, 8), 5), cond, None)
        dec.net.pos_emb.emb.weight.zero_()
        flat, _ = dec._hidden(torch.full((1, 8), 5), cond, None)
    assert not torch.allclose(hidden, flat)


def _pooled_ignoring_padding(pool: str) -> tuple[IdeaEncoder, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """An encoder with `pool`, its output on 3 ideas (row 1 padded after 5 tokens), asserted not to change when
    only row 1's padding does; returns the encoder, the output, the tokens, a copy with other padding, the mask."""
    torch.manual_seed(0)
    enc = IdeaEncoder(EncoderConfig(dim=32, depth=1, heads=2, pool=pool), 40, 16, 8)
    tokens, mask = torch.randint(3, 40, (3, 10)), torch.ones(3, 10, dtype=torch.bool)
    mask[1, 5:] = False
    other = tokens.clone()
    other[1, 5:] = 7  # only padding changes
    out = enc(tokens, mask)
    assert out.shape == (3, 8) and torch.allclose(out[1], enc(other, mask)[1], atol=1e-6)
    return enc, out, tokens, other, mask


def test_attention_pooling_reads_only_real_tokens_and_bad_pools_are_refused():
    enc, out, tokens, other, mask = _pooled_ignoring_padding("attention")
    other[1, 0] = 8 if tokens[1, 0] != 8 else 9  # a real token changes
    assert not torch.allclose(out[1], enc(other, mask)[1])
    out.sum().backward()
    assert enc.pool_query.grad is not None and enc.pool_query.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="pool"):
        IdeaEncoder(EncoderConfig(dim=32, depth=1, heads=2, pool="max"), 40, 16, 8)


def test_flatten_pooling_reads_only_real_tokens_knows_where_they_are_and_refuses_longer_ideas():
    enc, out, *_ = _pooled_ignoring_padding("flatten")
    # One distinct token among the same others, at two places: each place has its own weights.
    one = torch.full((2, 12), 3)
    one[0, 2], one[1, 9] = 20, 20
    a, b = enc(one, torch.ones(2, 12, dtype=torch.bool))
    assert (a - b).abs().max() > 1e-2
    out.sum().backward()
    assert enc.pool_flat.weight.grad is not None and enc.pool_flat.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="longer than"):
        enc(torch.randint(3, 40, (1, 17)), torch.ones(1, 17, dtype=torch.bool))


def test_raster_positions_give_a_frame_its_geometry_and_need_learned_positions():
    """A raster table's x half depends on the column only, its y half on the row only; neighbours start alike and far
    pixels do not; every row has the norm of a random row; the encoder and decoder start from it when asked."""
    from hiertok.errors import UserError
    from hiertok.layers import raster_positions

    table = torch.zeros(256, 64)
    raster_positions(table, width=16)
    grid = table.view(16, 16, 64)  # (y, x, d)
    x_half, y_half = grid[..., :32], grid[..., 32:]
    assert torch.allclose(x_half, x_half[:1].expand_as(x_half)) and torch.allclose(
        y_half, y_half[:, :1].expand_as(y_half)
    )
    assert torch.allclose(table.norm(dim=1), torch.full((256,), 8.0))
    near, far = grid[3, 4] @ grid[3, 5], grid[3, 4] @ grid[3, 12]
    assert near > 0.5 * 64 > far
    enc = IdeaEncoder(EncoderConfig(dim=64, heads=4, dim_head=16, abs_positions=True, raster_width=16), 7, 256, 32)
    assert torch.equal(enc.net.pos_emb.emb.weight.data, table)
    with pytest.raises(UserError, match="raster_width needs model.decoder.abs_positions"):
        IdeaDecoder(DecoderConfig(dim=64, raster_width=16), 7, 32, SpecialIds(0, 1, 2))
