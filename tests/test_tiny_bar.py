"""Slow: the tiny config trains on the synthetic world and reconstructs held-out sentences.

Run with `python -m pytest -m slow`. About 6 minutes on 2 CPU cores. The README reports the measured
figures of the same command; here the thresholds leave a little room for other CPUs' float rounding.
"""

from pathlib import Path

import pytest

from hiertok.config import load_config
from hiertok.evaluate import evaluate_run
from hiertok.tokenizer import TokenizerConfig
from hiertok.train_tokenizer import train

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.slow
def test_tiny_config_reaches_the_bar(tmp_path):
    cfg = load_config(TokenizerConfig, CONFIGS / "tokenizer" / "tiny.yaml", ["train.progress=false"])
    train(cfg, tmp_path / "tiny")
    res = evaluate_run(str(tmp_path / "tiny"), "synthetic")
    em = [res.exact_match_by_prefix[str(k)] for k in range(1, cfg.model.quantizer.levels + 1)]
    assert em[-1] >= 0.93
    assert res.exact_match_unseen >= 0.88
    assert em[len(em) // 2 - 1] >= 0.5
    assert all(b >= a - 0.01 for a, b in zip(em, em[1:]))  # non-decreasing up to sampling noise
