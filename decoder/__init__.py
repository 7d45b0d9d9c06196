"""Conditioned token decoder: codes -> tokens, with batched greedy / sampling / beam-search generation."""

from decoder.generate import Generated, GenerationConfig, generate
from decoder.model import Condition, DecoderConfig, IdeaDecoder, SpecialIds

__all__ = ["Condition", "DecoderConfig", "GenerationConfig", "Generated", "IdeaDecoder", "SpecialIds", "generate"]
