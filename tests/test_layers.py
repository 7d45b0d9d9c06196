"""The shared attention stack: every model's `dim_head` reaches its attention layers."""

import pytest

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
