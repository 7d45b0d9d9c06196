"""Slow: the tiny configs train on the synthetic world and reconstruct held-out sentences.

Run with `python -m pytest -m slow`. About 4 minutes per config on 2 CPU cores. The README reports the
measured figures of the same commands; the thresholds leave a little room for other CPUs' float rounding.
`tiny-recon` is the layout tuned for reconstruction alone; `tiny` (the demo's) gives up full-depth exact match
for a level 1 that carries the story's event and a decoder that reads the story (see the README).
"""

from pathlib import Path

import pytest

from hiertok.config import load_config
from hiertok.evaluate import evaluate_run
from hiertok.tokenizer import TokenizerConfig
from hiertok.train_tokenizer import train

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

# config -> (full-depth exact match, on unseen sentences (None: not required), at half depth, exact match
# never falls as k grows).
# `tiny` trains the middle prefixes little (geometric prefix lengths), so it is only required to be best at full
# depth. Its decoder reads the story so far (model.decoder.context), and its codes no longer carry the names a
# story establishes: decoded from its own codes alone, with no earlier text, an idea is rarely exact. Measured
# with `python experiments/story_context.py` (README, "Story context"): full depth 0.032 and 0.032, half depth
# 0.021 and 0.026, unseen 0.011 and 0.006 (too few to require) for seeds 0 and 1.
BARS = {"tiny-recon": (0.93, 0.88, 0.5, True), "tiny": (0.015, None, 0.01, False)}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BARS))
def test_tiny_config_reaches_the_bar(name, tmp_path):
    cfg = load_config(TokenizerConfig, CONFIGS / "tokenizer" / f"{name}.yaml", ["train.progress=false"])
    train(cfg, tmp_path / name)
    res = evaluate_run(str(tmp_path / name), "synthetic")
    em = [res.exact_match_by_prefix[str(k)] for k in range(1, cfg.model.quantizer.levels + 1)]
    full, unseen, half, monotone = BARS[name]
    assert em[-1] >= full
    if unseen is not None:
        assert res.exact_match_unseen >= unseen
    assert em[len(em) // 2 - 1] >= half
    if monotone:
        assert all(b >= a - 0.01 for a, b in zip(em, em[1:]))  # non-decreasing up to sampling noise
    assert em[-1] == max(em)
