"""The beam search at its edges: a cut prompt, one diverse step group by group, early stopping, dead beams.

Each test was written against a change of planner/search.py that the rest of the suite let pass (mutation
testing, experiments/README "Mutation testing").
"""

import pytest
import torch

from planner import search as search_module
from planner.model import Planner, PlannerModelConfig
from planner.search import NEG, SearchConfig, _beam_step, beam_search, search
from planner.vocab import CodeVocab

from .test_planner_search import fresh_logprob, random_codes, sharp_planner


@pytest.fixture(scope="module")
def sharp() -> Planner:
    return sharp_planner()


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("max_context", [1, 3, 4, 6])
def test_a_cut_prompt_is_scored_as_the_continuation_of_a_document(sharp, use_cache, max_context):
    """A prompt longer than max_context is planned from its last max_context ideas, flagged as a continuation;
    one that fits is planned whole, as a document start. Every beam's log-probability is the teacher-forced one
    under exactly that context and flag, the goal included, with and without the cache."""
    prompt, goal = random_codes(2, 4, seed=5), random_codes(2, seed=6)
    cut = max_context < prompt.shape[1]
    cfg = SearchConfig(num_beams=3, max_ideas=3, max_context=max_context, use_cache=use_cache)
    for i, plans in enumerate(search(sharp, prompt, goal, cfg)):
        seen = prompt[i, -max_context:]
        for p in plans:
            assert p.logprob == pytest.approx(fresh_logprob(sharp, seen, goal[i], p, cont=cut), abs=1e-4)
            # The test can tell the flags apart: they move a plan's log-probability by more than its tolerance.
            assert abs(fresh_logprob(sharp, seen, goal[i], p, cont=not cut) - p.logprob) > 1e-3
            assert abs(fresh_logprob(sharp, seen, None, p, cont=cut) - p.logprob) > 1e-3


def reference_step(logp, logprob, groups, penalty, ends_here):
    """_beam_step written out beam by beam: each group picks its top candidates among its own beams only,
    paying `penalty` per earlier group that took the same choice; END (index 0) candidates that rank among a
    group's top ones end their beam."""
    b, k, n = logp.shape
    per = k // groups
    choice, parent = torch.zeros(b, k, dtype=torch.long), torch.zeros(b, k, dtype=torch.long)
    ended = torch.zeros(b, k, dtype=torch.bool)
    for i in range(b):
        used = [0] * n
        for g in range(groups):
            beams = range(g * per, (g + 1) * per)
            cands = [(float(logprob[i, j] + logp[i, j, c]) - penalty * used[c], j, c) for j in beams for c in range(n)]
            ranked = sorted(cands, key=lambda x: -x[0])
            cutoff = ranked[per - 1][0]
            if ends_here:
                for value, j, c in cands:
                    ended[i, j] |= c == 0 and value >= cutoff and value > NEG
                ranked = [x for x in ranked if x[2] != 0]
            for slot, (_, j, c) in enumerate(ranked[:per]):
                choice[i, g * per + slot], parent[i, g * per + slot] = c, j
                used[c] += 1
    return choice, parent, ended


@pytest.mark.parametrize("groups", [1, 2, 3])
@pytest.mark.parametrize("ends_here", [False, True])
def test_a_diverse_step_picks_each_groups_beams_from_its_own_rows(groups, ends_here):
    g = torch.Generator().manual_seed(groups)
    logp = torch.randn(2, 6, 5, generator=g).log_softmax(-1)
    logprob = torch.randn(2, 6, generator=g) * 3  # every beam alive, all different
    choice, parent, step_lp, ended = _beam_step(logp, logprob, groups, 0.7, ends_here)
    want_choice, want_parent, want_ended = reference_step(logp, logprob, groups, 0.7, ends_here)
    assert torch.equal(parent, want_parent) and torch.equal(choice, want_choice)
    assert torch.equal(ended, want_ended)
    assert torch.equal(step_lp, logp[torch.arange(2)[:, None], parent, choice])


def test_end_ends_a_live_beam_only():
    """One live beam among four, END its likeliest choice, code 1 impossible: fewer finite candidates than
    beams, so the cut-off is -inf. The live beam ends; the dead ones (log-probability -inf) do not."""
    logp = torch.tensor([[[-0.1, NEG, -2.4]] * 4])  # (1 prompt, 4 beams, END + 2 codes)
    logprob = torch.tensor([[0.0, NEG, NEG, NEG]])
    _, _, _, ended = _beam_step(logp, logprob, 1, 0.0, True)
    assert ended.tolist() == [[True, False, False, False]]


def test_more_beams_than_plans_returns_only_the_plans_that_exist():
    """Two levels of two codes give four one-idea plans: eight beams return those four, none at -inf."""
    torch.manual_seed(0)
    tiny = Planner(PlannerModelConfig(dim=16, depth=1, heads=2, tie_embeddings=False), CodeVocab((2, 2))).eval()
    prompt = torch.zeros(1, 1, 2, dtype=torch.long)
    plans = beam_search(tiny, prompt, None, SearchConfig(num_beams=8, max_ideas=1, allow_end=False))[0]
    assert sorted(p.codes.tolist() for p in plans) == [[[0, 0]], [[0, 1]], [[1, 0]], [[1, 1]]]
    assert all(p.logprob > NEG for p in plans)


def test_a_prompt_stops_searching_once_it_has_its_plans(sharp, monkeypatch):
    """Early stopping: once a prompt has num_beams finished plans, none of its beams is extended again, so
    no plan of it has more ideas than the step at which it closed."""
    made = []  # (prompt, ideas, ended) of every plan the search makes
    plan = search_module._plan

    def record(rows, r, logprob, ended, cfg):
        made.append((r // rows.k, rows.ideas.shape[1], ended))
        return plan(rows, r, logprob, ended, cfg)

    monkeypatch.setattr(search_module, "_plan", record)
    prompts = random_codes(6, 2, seed=8)
    cfg = SearchConfig(num_beams=2, max_ideas=12, length_penalty=1.0)
    results = search(sharp, prompts, None, cfg)
    closed_early = 0
    for i in range(len(prompts)):
        ends = sorted(n for who, n, ended in made if who == i and ended)
        if len(ends) >= cfg.num_beams:
            closing = ends[cfg.num_beams - 1]  # the step at which it had num_beams finished plans
            assert max(n for who, n, _ in made if who == i) == closing
            assert all(len(p.codes) <= closing for p in results[i])
            closed_early += closing < cfg.max_ideas
    assert closed_early >= 2  # the prompts include ones that stop before the budget


def test_a_closed_prompt_does_not_stop_the_others_from_finishing(sharp):
    """Prompts close at different steps; a closed prompt's ENDs in a later step are skipped without skipping
    the other prompts' ENDs of that step: each prompt gets the plans it gets alone."""
    prompts = random_codes(16, 2, seed=9)  # 8 prompts here never had a closed and an open END in one step
    cfg = SearchConfig(num_beams=2, max_ideas=12, length_penalty=1.0)
    together = search(sharp, prompts, None, cfg)
    for i in range(len(prompts)):
        alone = search(sharp, prompts[i : i + 1], None, cfg)[0]
        assert [(p.codes.tolist(), p.ended) for p in alone] == [(p.codes.tolist(), p.ended) for p in together[i]]
        assert [p.logprob for p in alone] == pytest.approx([p.logprob for p in together[i]], abs=1e-5)
