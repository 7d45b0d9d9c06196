"""Slow: the tiny configs train on the synthetic world and reconstruct held-out sentences.

Run with `python -m pytest -m slow`. About 4 minutes per config on 2 CPU cores. The README reports the
measured figures of the same commands; the thresholds leave a little room for other CPUs' float rounding.
`tiny-recon` is the layout tuned for reconstruction alone; `tiny` (the demo's) gives up much full-depth
exact match for a level 1 that carries the story's event (a planner over it plans far better, see the README).
"""

from pathlib import Path

import pytest

from hiertok.config import load_config
from hiertok.evaluate import evaluate_run
from hiertok.tokenizer import TokenizerConfig
from hiertok.train_tokenizer import train

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

# config -> (full-depth exact match, on unseen sentences, at half depth, exact match never falls as k grows).
# `tiny` trains the middle prefixes little (geometric prefix lengths): its exact match is flat from 4 to 8
# levels (README), so it is only required to be best at full depth.
# `tiny` measured 0.369, 0.146, 0.283 at commit 80fc82f and 0.273, 0.052, 0.201 at c4db748, which changed only
# the floating-point rounding of its batches (README, "Tiny"): its 1600 steps amplify rounding that much.
BARS = {"tiny-recon": (0.93, 0.88, 0.5, True), "tiny": (0.22, 0.03, 0.15, False)}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BARS))
def test_tiny_config_reaches_the_bar(name, tmp_path):
    cfg = load_config(TokenizerConfig, CONFIGS / "tokenizer" / f"{name}.yaml", ["train.progress=false"])
    train(cfg, tmp_path / name)
    res = evaluate_run(str(tmp_path / name), "synthetic")
    em = [res.exact_match_by_prefix[str(k)] for k in range(1, cfg.model.quantizer.levels + 1)]
    full, unseen, half, monotone = BARS[name]
    assert em[-1] >= full
    assert res.exact_match_unseen >= unseen
    assert em[len(em) // 2 - 1] >= half
    if monotone:
        assert all(b >= a - 0.01 for a, b in zip(em, em[1:]))  # non-decreasing up to sampling noise
    assert em[-1] == max(em)
