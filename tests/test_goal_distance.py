"""Goals at a given distance (`model.goal_distance`): training windows cut at a goal, every position told how far
it is, and a search that plans toward the goal as its last idea."""

import numpy as np
import pytest
import torch

from planner.model import Planner, PlannerModelConfig, goal_steps_left
from planner.search import SearchConfig, search
from planner.shards import CodeCorpus
from planner.vocab import CodeVocab
from planner.windows import Windows

SIZES = (5, 4, 3)


def test_each_input_is_told_how_far_the_idea_it_predicts_is_from_the_goal():
    left = goal_steps_left(torch.tensor([3, -1, 0]), 0, 6)
    assert left.tolist() == [[4, 3, 2, 1, 0, 0], [0] * 6, [1, 0, 0, 0, 0, 0]]
    assert goal_steps_left(torch.tensor([3]), 2, 2).tolist() == [[2, 1]]


def corpus(lengths: list[int]) -> CodeCorpus:
    rng = np.random.default_rng(0)
    codes = np.stack([rng.integers(0, s, sum(lengths)) for s in SIZES], axis=1).astype(np.int32)
    return CodeCorpus(codes, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), {})


def test_a_window_shown_its_goal_ends_at_a_goal_drawn_inside_it():
    windows = Windows(corpus([6, 9, 2, 7]), window=20)
    vocab = CodeVocab(SIZES)
    seen = set()
    for seed in range(40):
        batch = windows.batch(range(4), vocab, goal_dropout=0.3, seed=seed, goal_distance=4)
        lengths = batch.mask.sum(1)
        for i in range(4):
            n, doc_len = int(lengths[i]), int(windows.lengths[i])
            if not batch.goal_on[i]:  # the whole document, nobody told a distance
                assert n == doc_len and (batch.left[i] == 0).all() and batch.ends[i]
                continue
            assert 2 <= n <= doc_len
            assert torch.equal(batch.goal[i], batch.ideas[i, n - 1])  # the goal is the window's last idea
            assert batch.left[i, :n].tolist() == list(range(n, 0, -1)) and (batch.left[i, n:] == 0).all()
            assert bool(batch.ends[i]) == (n == doc_len)
            seen.add((i, n))
    assert {n for i, n in seen if i == 1} == set(range(2, 10))  # every cut of the 9-idea document
    plain = windows.batch(range(4), vocab, goal_dropout=0.3, seed=3)
    assert plain.left is None and plain.mask.sum(1).tolist() == [6, 9, 2, 7]


@pytest.fixture(scope="module")
def planner() -> Planner:
    torch.manual_seed(0)
    cfg = PlannerModelConfig(dim=32, depth=2, heads=2, tie_embeddings=False, goal_distance=5)
    p = Planner(cfg, CodeVocab(SIZES)).eval()
    with torch.no_grad():
        p.head.out.weight.mul_(8)
        p.goal_left.weight.normal_(0, 1.0)  # distances that move the plans
    return p


def fresh_logprob(planner: Planner, prompt: torch.Tensor, goal: torch.Tensor, plan) -> float:
    """The plan's log-probability in one teacher-forced pass, told the distances training tells: the goal is the
    plan's last idea."""
    vocab, t, n = planner.vocab, prompt.shape[0], len(plan.codes)
    ideas = vocab.to_ids(torch.cat([prompt, plan.codes]))[None]
    left = goal_steps_left(torch.tensor([t + n - 1]), 0, t + n + 1)
    with torch.no_grad():
        nll, _ = planner(
            ideas,
            torch.ones(ideas.shape[:2], dtype=torch.bool),
            torch.tensor([False]),
            vocab.to_ids(goal)[None],
            torch.tensor([True]),
            torch.tensor([False]),
            left,
        )
    return -float(nll[0, t:].sum())


def codes(*shape: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, s, shape, generator=g) for s in SIZES], dim=-1)


@pytest.mark.parametrize("use_cache", [True, False])
def test_a_search_plans_toward_the_goal_at_its_last_idea(planner, use_cache):
    prompt, goal = codes(2, 3, seed=1), codes(2, seed=2)
    cfg = SearchConfig(max_ideas=4, num_beams=3, allow_end=False, use_cache=use_cache)
    results = search(planner, prompt, goal, cfg)
    for i, plans in enumerate(results):
        for p in plans:
            assert len(p.codes) == 4
            assert p.logprob == pytest.approx(fresh_logprob(planner, prompt[i], goal[i], p), abs=1e-4)
    farther = search(planner, prompt, goal, SearchConfig(max_ideas=3, num_beams=3, allow_end=False))
    assert [p.codes[:3].tolist() for p in results[0]] != [p.codes.tolist() for p in farther[0]]
