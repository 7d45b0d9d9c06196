"""A world small enough for a toy tokenizer to learn to reconstruct in seconds: stories of 4 sentences
"The {colour} {animal} {verb}." with 8 values per slot (512 sentences), drawn at random, so that the next
sentence never follows from the ones before: only its codes can tell the decoder which one it is."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

COLOURS = "red blue green pink gold grey white black".split()
ANIMALS = "fox cat dog owl bee frog hen yak".split()
VERBS = "ran sang slept jumped swam hid ate sat".split()
SENTENCES = [f"The {c} {a} {v}." for c, a, v in itertools.product(COLOURS, ANIMALS, VERBS)]

# The toy sizes of tests/conftest.py's TOY, trained long enough to reconstruct this world (about 10 s).
RECON = [
    "data.eval_docs=20",
    "data.vocab_size=300",
    "model.encoder.dim=32",
    "model.encoder.heads=2",
    "model.decoder.dim=32",
    "model.decoder.heads=2",
    "model.quantizer.levels=4",
    "train.batch_size=32",
    "train.max_steps=300",
    "train.warmup_steps=10",
    "train.lr=3e-3",
    "train.eval_every=300",
    "train.save_every=300",
    "train.log_every=50",
    "train.eval_ideas=16",
    "train.progress=false",
]


def stories(count: int, seed: int) -> list[str]:
    """`count` stories of 4 sentences drawn at random (held-out stories: another seed than training's)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(SENTENCES) for _ in range(4)) for _ in range(count)]


def write_corpus(path: Path, docs: int = 600, seed: int = 0) -> Path:
    """A JSONL file of `docs` training stories."""
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in stories(docs, seed)), encoding="utf-8")
    return path
