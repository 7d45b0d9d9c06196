"""Checks of the values a user passes (flags, Python arguments), each failing with one line that names the value.

Used at the boundary, where a value enters (the CLI, `Pipeline.generate`, the tokenizer's public methods), so that a
wrong type or an absurd size fails at the call, not deep inside torch, and whether or not the value takes effect.
"""

from __future__ import annotations

import math

from hiertok.errors import UserError

# Sizes past these make a command run for minutes with nothing to show (a beam of 10,000 plans, 100,000 samples).
# They are far above any setting that helps: a wider search or more samples cost time in proportion.
MAX_BEAMS = 256
MAX_SAMPLES = 1024
MAX_IDEAS = 1024
# Past these, softmax(logits / temperature) overflows float32 (1e-40) or is uniform to the last bit (1e39).
MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-3, 1e3
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a 64-bit integer


def check_int(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """`value` if it is an int (not a bool) in [low, high]; else TypeError / UserError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if low is not None and value < low:
        raise UserError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise UserError(f"{name} must be <= {high}, got {value}")
    return value


def check_float(name: str, value: object, low: float | None = None, high: float | None = None) -> float:
    """`value` as a float if it is a finite real number (not a bool) in [low, high]; else TypeError / UserError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise UserError(f"{name} must be in [{low}, {high}], got {value}")
    return float(value)


def check_temperature(name: str, value: object) -> float:
    """A sampling temperature: 0 (greedy) or in [MIN_TEMPERATURE, MAX_TEMPERATURE]."""
    t = check_float(name, value, 0.0, MAX_TEMPERATURE)
    if 0 < t < MIN_TEMPERATURE:
        raise UserError(f"{name} must be 0 (greedy) or >= {MIN_TEMPERATURE}, got {t}")
    return t


def check_mass(name: str, value: object) -> float:
    """A nucleus (top-p) probability mass: a finite number in (0, 1]."""
    mass = check_float(name, value, 0.0, 1.0)
    if mass == 0:
        raise UserError(f"{name} must be in (0, 1], got {value}")
    return mass


def check_text(name: str, value: object) -> str:
    """`value` if it is a str; else TypeError (bytes are not text: decode them first)."""
    if not isinstance(value, str):
        hint = " (decode bytes first)" if isinstance(value, (bytes, bytearray)) else ""
        raise TypeError(f"{name} must be a str, got {type(value).__name__}{hint}")
    return value
