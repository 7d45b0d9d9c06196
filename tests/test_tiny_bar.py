"""Slow: the tiny configs train on the synthetic world; the tokenizer reconstructs held-out sentences and the
demo's planner writes stories that keep their grammar, their cast and their plan.

Run with `python -m pytest -m slow`. On 2 CPU cores: tiny-recon about 10 minutes, tiny's tokenizer about 15
and its planner about 10 more. `tiny-recon` is the layout tuned for reconstruction alone; `tiny` (the demo's)
gives up full-depth exact match for a level 1 that carries the story's event and a decoder that reads the
story (see the README).

Thresholds are mean - 2 sd over 3 seeds (train.seed 0, 1, 2), measured with
`python experiments/story_context.py --variants context_pointer` for `tiny` (session 29,
experiments/results/context_pointer/): exact match at full depth 0.0083 / 0.0139 / 0.0167 (mean - 2 sd 0.0044);
at half depth (k = 8) 0.0070 / 0.0083 / 0.0139 (0.0024); plan adherence at level 1 0.997 / 0.986 / 0.940 (0.914);
story_valid, goal reached and grammar-valid 1.00 on all three (sd 0: the issue's bars, 0.95, 0.95 and 0.99, are
the thresholds). Decoded from its own codes alone, with no earlier text, a `tiny` idea is rarely exact: its
decoder reads names from the story, not from the codes, and its middle prefixes are trained little, so full
depth need not be the best prefix. `tiny-recon`'s bars (0.93 full, 0.88 unseen, 0.5 half) are from earlier
sessions' measurements, not from 3 seeds at this commit.
"""

from pathlib import Path

import pytest

from hiertok.config import load_config
from hiertok.eval_planner import evaluate_planner_run
from hiertok.evaluate import evaluate_run
from hiertok.tokenizer import TokenizerConfig
from hiertok.train_tokenizer import train
from planner.config import PlannerConfig
from planner.train import train as train_planner

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

# config -> (full-depth exact match, on unseen sentences (None: not required), at half depth, exact match
# never falls as k grows and is best at full depth).
BARS = {"tiny-recon": (0.93, 0.88, 0.5, True), "tiny": (0.0044, None, 0.0024, False)}
PLANNER_BARS = {"story_valid": 0.95, "plan_adherence_level1": 0.914, "goal_reached": 0.95, "grammar_valid": 0.99}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train a tiny config's tokenizer once per module (name -> run directory)."""
    runs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in runs:
            cfg = load_config(TokenizerConfig, CONFIGS / "tokenizer" / f"{name}.yaml", ["train.progress=false"])
            runs[name] = tmp_path_factory.mktemp(name) / "tok"
            train(cfg, runs[name])
        return runs[name]

    return get


@pytest.mark.slow
@pytest.mark.timeout(3600)  # a tokenizer trained for up to 16 minutes (more on a loaded machine)
@pytest.mark.parametrize("name", sorted(BARS))
def test_tiny_config_reaches_the_bar(name, trained):
    run = trained(name)
    levels = load_config(TokenizerConfig, run / "config.yaml").model.quantizer.levels
    res = evaluate_run(str(run), "synthetic", max_docs=100 if name == "tiny" else None)  # as measured
    em = [res.exact_match_by_prefix[str(k)] for k in range(1, levels + 1)]
    full, unseen, half, monotone = BARS[name]
    assert em[-1] >= full
    if unseen is not None:
        assert res.exact_match_unseen >= unseen
    assert em[len(em) // 2 - 1] >= half
    if monotone:
        assert all(b >= a - 0.01 for a, b in zip(em, em[1:]))  # non-decreasing up to sampling noise
        assert em[-1] == max(em)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # the tokenizer (if not trained yet) and the planner: about 30 minutes
def test_the_demo_planner_reaches_its_headline_figures(trained, tmp_path):
    tok = trained("tiny")
    cfg = load_config(PlannerConfig, CONFIGS / "planner" / "tiny.yaml", [f"tokenizer={tok}", "train.progress=false"])
    train_planner(cfg, tmp_path / "plan")
    res = evaluate_planner_run(str(tmp_path / "plan"), max_docs=100, prompts=100, beams=4)
    below = {key: getattr(res, key) for key, bar in PLANNER_BARS.items() if getattr(res, key) < bar}
    assert not below, below  # every key below its bar, with its value
