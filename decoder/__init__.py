"""Conditioned token decoder: codes -> tokens, with batched greedy / sampling / beam-search generation."""

from decoder.generate import Generated, GenerationConfig, generate
from decoder.model import DecoderConfig, IdeaDecoder, SpecialIds

__all__ = ["DecoderConfig", "GenerationConfig", "Generated", "IdeaDecoder", "SpecialIds", "generate"]
