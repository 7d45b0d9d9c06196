"""Planner model and plan search on a small random planner: exactness properties of the search."""

import pytest
import torch

from hiertok.sampling import filter_logits
from planner.model import Planner, PlannerModelConfig
from planner.search import Plan, SearchConfig, beam_search, sample, search
from planner.vocab import END, CodeVocab

SIZES = (5, 4, 3)


def sharp_planner() -> Planner:
    """A small random planner with sharper distributions than at init, so that beams and greedy differ."""
    torch.manual_seed(0)
    p = Planner(PlannerModelConfig(dim=32, depth=2, heads=2, tie_embeddings=False), CodeVocab(SIZES)).eval()
    with torch.no_grad():
        p.head.out.weight.mul_(8)
    return p


@pytest.fixture(scope="module")
def planner() -> Planner:
    return sharp_planner()


def random_codes(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, s, shape, generator=g) for s in SIZES], dim=-1)


def fresh_logprob(planner: Planner, prompt: torch.Tensor, goal: torch.Tensor | None, plan, cont: bool = False) -> float:
    """Log-probability of a plan's codes (and END) in one teacher-forced forward pass, no cache; `cont`: the
    prompt continues a document (it was cut)."""
    vocab = planner.vocab
    t = prompt.shape[0]
    ideas = vocab.to_ids(torch.cat([prompt, plan.codes]))[None]
    goal_ids = vocab.to_ids(goal if goal is not None else torch.zeros(len(SIZES), dtype=torch.long))[None]
    with torch.no_grad():
        nll, _ = planner(
            ideas,
            torch.ones(ideas.shape[:2], dtype=torch.bool),
            torch.tensor([plan.ended]),
            goal_ids,
            torch.tensor([goal is not None]),
            torch.tensor([cont]),
        )
    return -float(nll[0, t:].sum())


def test_vocab_round_trip_and_level_slices():
    vocab = CodeVocab(SIZES)
    codes = random_codes(7)
    assert torch.equal(vocab.to_codes(vocab.to_ids(codes)), codes)
    assert vocab.size == 1 + sum(SIZES)
    assert vocab.level_slice(0) == slice(0, 6) and vocab.level_slice(1) == slice(6, 10)
    assert vocab.level_slice(2) == slice(10, 13)


def test_training_targets_put_end_after_the_last_idea(planner):
    vocab = planner.vocab
    ideas = vocab.to_ids(random_codes(2, 3))
    mask = torch.tensor([[True, True, True], [True, False, False]])
    goal = ideas[:, -1]
    nll, tmask = planner(
        ideas, mask, torch.tensor([True, False]), goal, torch.tensor([True, False]), torch.tensor([False, True])
    )
    assert nll.shape == tmask.shape == (2, 4, 3)
    assert tmask[0].tolist() == [[True] * 3] * 3 + [[True, False, False]]  # 3 ideas, then END at level 1
    assert tmask[1].tolist() == [[True] * 3] + [[False] * 3] * 3  # 1 idea, window does not end the document
    assert bool((nll[~tmask] == 0).all()) and bool((nll[tmask] > 0).all())


def test_goal_changes_the_context(planner):
    prompt = planner.vocab.to_ids(random_codes(3, 2))
    goal = planner.vocab.to_ids(random_codes(3, seed=1))
    with_goal = planner.context(prompt, goal, None, None)
    without = planner.context(prompt, None, None, None)
    dropped = planner.context(prompt, goal, torch.tensor([False, True, False]), None)
    assert with_goal.shape == without.shape == (3, 4, 32)
    assert not torch.allclose(with_goal[:, 0], without[:, 0])
    assert torch.equal(dropped[0], without[0]) and torch.equal(dropped[1], with_goal[1])
    assert torch.equal(with_goal[:, 1:], without[:, 1:])


def test_one_beam_is_greedy(planner):
    prompt = random_codes(4, 2)
    cfg = SearchConfig(max_ideas=6)
    greedy = sample(planner, prompt, None, cfg)
    beam = beam_search(planner, prompt, None, cfg)
    for g, b in zip(greedy, beam):
        assert torch.equal(g[0].codes, b[0].codes) and g[0].ended == b[0].ended
        assert g[0].logprob == pytest.approx(b[0].logprob, abs=1e-5)


def test_beams_are_sorted_and_their_scores_are_fresh_logprobs(planner):
    prompt, goal = random_codes(2, 2), random_codes(2, seed=3)
    cfg = SearchConfig(max_ideas=5, num_beams=4, length_penalty=0.7)
    results = search(planner, prompt, goal, cfg)
    ended = 0
    for i, plans in enumerate(results):
        assert len(plans) == 4
        scores = [p.score for p in plans]
        assert scores == sorted(scores, reverse=True)
        for p in plans:
            assert p.logprob == pytest.approx(fresh_logprob(planner, prompt[i], goal[i], p), abs=1e-4)
            assert p.score == pytest.approx(p.logprob / (len(p.codes) + p.ended) ** 0.7)
            assert sum(p.idea_logprobs) <= p.logprob + 1e-4 if not p.ended else True
            ended += p.ended
    assert ended > 0  # the test covers plans that end


def test_cached_and_uncached_search_agree(planner):
    prompt = random_codes(2, 1)
    for cfg in (SearchConfig(max_ideas=4, num_beams=3), SearchConfig(max_ideas=4, temperature=1.0, num_samples=3)):
        cached = search(planner, prompt, None, cfg, torch.Generator().manual_seed(5))
        cfg.use_cache = False
        plain = search(planner, prompt, None, cfg, torch.Generator().manual_seed(5))
        for a, b in zip(cached, plain):
            assert [p.codes.tolist() for p in a] == [p.codes.tolist() for p in b]
            assert [p.logprob for p in a] == pytest.approx([p.logprob for p in b], abs=1e-4)


def test_plans_respect_level_ranges(planner):
    plans = search(planner, random_codes(3, 1), None, SearchConfig(max_ideas=5, num_beams=4))
    plans += search(planner, random_codes(3, 1), None, SearchConfig(max_ideas=5, temperature=1.5, num_samples=4))
    for p in (p for per_prompt in plans for p in per_prompt):
        assert p.codes.shape[1] == len(SIZES)
        for level, size in enumerate(SIZES):
            assert bool(((p.codes[:, level] >= 0) & (p.codes[:, level] < size)).all())


def test_without_end_every_plan_has_the_full_length(planner):
    for cfg in (SearchConfig(max_ideas=4, num_beams=3, allow_end=False), SearchConfig(max_ideas=4, allow_end=False)):
        for p in search(planner, random_codes(2, 1), None, cfg)[0]:
            assert len(p.codes) == 4 and not p.ended
    assert END == 0


def test_diverse_groups_differ(planner):
    prompt = random_codes(1, 1)
    plain = search(planner, prompt, None, SearchConfig(max_ideas=3, num_beams=4, allow_end=False))[0]
    diverse = search(
        planner,
        prompt,
        None,
        SearchConfig(max_ideas=3, num_beams=4, diverse_groups=4, diversity_penalty=100.0, allow_end=False),
    )[0]
    first = {tuple(p.codes[0].tolist()) for p in diverse}
    assert len({p.codes[0, 0].item() for p in diverse}) == 4  # each group took its own first code
    assert len(first) == 4
    assert diverse[0].logprob <= plain[0].logprob + 1e-5  # diversity costs likelihood, never gains it


def test_sampling_is_seeded_and_top_k_one_is_greedy(planner):
    prompt = random_codes(2, 1)
    cfg = SearchConfig(max_ideas=4, temperature=1.0, num_samples=3)
    a = sample(planner, prompt, None, cfg, torch.Generator().manual_seed(1))
    b = sample(planner, prompt, None, cfg, torch.Generator().manual_seed(1))
    assert [[p.codes.tolist() for p in x] for x in a] == [[p.codes.tolist() for p in x] for x in b]
    top1 = sample(planner, prompt, None, SearchConfig(max_ideas=4, temperature=1.0, top_k=1))
    greedy = sample(planner, prompt, None, SearchConfig(max_ideas=4))
    assert [x[0].codes.tolist() for x in top1] == [x[0].codes.tolist() for x in greedy]


def test_bad_search_settings_are_refused():
    with pytest.raises(ValueError, match="multiple"):
        SearchConfig(num_beams=4, diverse_groups=3).validate()
    with pytest.raises(ValueError, match="not both"):
        SearchConfig(num_beams=4, temperature=1.0).validate()


def test_tied_embeddings_share_one_table():
    p = Planner(PlannerModelConfig(dim=16, depth=1, heads=2), CodeVocab(SIZES))
    assert p.head.code_emb.weight is p.code_emb.weight and p.head.out.weight is p.code_emb.weight
    untied = Planner(PlannerModelConfig(dim=16, depth=1, heads=2, tie_embeddings=False), CodeVocab(SIZES))
    table = p.code_emb.weight.numel()
    assert sum(x.numel() for x in untied.parameters()) - sum(x.numel() for x in p.parameters()) == 2 * table


def test_a_prompt_gets_the_same_plans_alone_or_in_a_batch(planner):
    prompts = random_codes(4, 1, seed=7)
    cfg = SearchConfig(max_ideas=5, num_beams=3)
    together = search(planner, prompts, None, cfg)
    for i in range(4):
        alone = search(planner, prompts[i : i + 1], None, cfg)[0]
        assert [p.codes.tolist() for p in alone] == [p.codes.tolist() for p in together[i]]
        assert [p.score for p in alone] == pytest.approx([p.score for p in together[i]], abs=1e-5)


@pytest.mark.parametrize("use_cache", [True, False])
def test_a_long_prompt_is_planned_from_its_last_ideas_only(planner, use_cache):
    cfg = SearchConfig(num_beams=3, max_ideas=3, max_context=4, use_cache=use_cache)
    prompt = random_codes(2, 9, seed=3)
    other = prompt.clone()
    other[:, :5] = random_codes(2, 5, seed=4)  # different ideas before the last 4
    a, b = search(planner, prompt, None, cfg), search(planner, other, None, cfg)
    assert [[(p.codes.tolist(), p.score) for p in per] for per in a] == [
        [(p.codes.tolist(), p.score) for p in per] for per in b
    ]
    full = search(planner, prompt, None, SearchConfig(num_beams=3, max_ideas=3, use_cache=use_cache))
    assert [p.score for p in full[0]] != [p.score for p in a[0]]  # without the cut, the early ideas count


@torch.no_grad()
def all_two_idea_logprobs(planner: Planner, prompt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every 2-idea plan after `prompt` (T, L), enumerated, with its log-probability (no END, no goal)."""
    one = torch.cartesian_prod(*(torch.arange(s) for s in SIZES))  # (60, L) every idea
    pairs = torch.cartesian_prod(torch.arange(len(one)), torch.arange(len(one)))
    plans = torch.stack([one[pairs[:, 0]], one[pairs[:, 1]]], dim=1)  # (3600, 2, L)
    ideas = planner.vocab.to_ids(torch.cat([prompt.expand(len(plans), -1, -1), plans], dim=1))
    n = len(plans)
    nll, _ = planner(
        ideas,
        torch.ones(ideas.shape[:2], dtype=torch.bool),
        torch.zeros(n, dtype=torch.bool),
        torch.zeros(n, len(SIZES), dtype=torch.long),
        torch.zeros(n, dtype=torch.bool),
        torch.zeros(n, dtype=torch.bool),
    )
    return plans, -nll[:, prompt.shape[0] :].sum((1, 2))


@pytest.fixture(scope="module")
def soft_planner() -> Planner:
    """A random planner as initialised (flatter than `planner`): greedy search often misses the best plan."""
    torch.manual_seed(0)
    return Planner(PlannerModelConfig(dim=32, depth=2, heads=2, tie_embeddings=False), CodeVocab(SIZES)).eval()


def test_an_exhaustive_beam_finds_the_enumerated_best_plan(soft_planner):
    misses = 0
    for seed in range(11, 16):
        prompt = random_codes(1, 2, seed=seed)
        plans, logprob = all_two_idea_logprobs(soft_planner, prompt[0])
        best = int(logprob.argmax())
        # 3600 beams keep every partial plan at every level: nothing is pruned, so the search is exact.
        cfg = SearchConfig(max_ideas=2, num_beams=len(plans), allow_end=False, length_penalty=0.0)
        found = beam_search(soft_planner, prompt, None, cfg)[0][0]
        assert torch.equal(found.codes, plans[best])
        assert found.logprob == pytest.approx(float(logprob[best]), abs=1e-4)
        greedy = sample(soft_planner, prompt, None, SearchConfig(max_ideas=2, allow_end=False))[0][0]
        misses += greedy.logprob < float(logprob[best]) - 1e-3
    assert misses >= 1  # the prompts include ones where greedy search misses the best plan


def test_four_beams_beat_greedy_on_average(soft_planner):
    prompts = random_codes(20, 2, seed=12)
    greedy = [p[0].logprob for p in sample(soft_planner, prompts, None, SearchConfig(max_ideas=4, allow_end=False))]
    cfg = SearchConfig(max_ideas=4, num_beams=4, allow_end=False)
    beams = [p[0].logprob for p in beam_search(soft_planner, prompts, None, cfg)]
    assert all(b >= g - 1e-4 for b, g in zip(beams, greedy))  # never worse on these seeded prompts
    assert sum(beams) / 20 > sum(greedy) / 20 + 0.3  # 0.75 nats better on average at this commit


def level0_logprobs(planner: Planner, prompt: torch.Tensor) -> torch.Tensor:
    """(1 + SIZES[0],) log-probabilities of the first new idea's level-1 choice (END first), by teacher-forced
    scoring of every one-idea plan: the level's marginal over the finer levels."""
    ideas = torch.cartesian_prod(*(torch.arange(s) for s in SIZES))
    joint = torch.tensor(
        [fresh_logprob(planner, prompt, None, Plan(codes=c[None], ended=False, logprob=0.0, score=0.0)) for c in ideas]
    )
    code = torch.stack([joint[ideas[:, 0] == c].logsumexp(0) for c in range(SIZES[0])])
    end = torch.log1p(-code.exp().sum().clamp(max=1 - 1e-7))
    return torch.cat([end[None], code])


@pytest.mark.parametrize("temperature, top_p", [(0.5, 1.0), (2.0, 0.7)])
def test_sampled_codes_follow_the_tempered_filtered_distribution(planner, temperature, top_p):
    prompt = random_codes(1, 1)
    logp = level0_logprobs(planner, prompt[0])
    logp[0] = float("-inf")  # END is masked on a plan's first idea
    expected = filter_logits((logp / temperature)[None], 0, top_p).softmax(-1)[0, 1:]
    n = 4000
    cfg = SearchConfig(max_ideas=1, temperature=temperature, top_p=top_p, num_samples=n, allow_end=False)
    plans = sample(planner, prompt, None, cfg, torch.Generator().manual_seed(0))[0]
    found = torch.bincount(torch.tensor([int(p.codes[0, 0]) for p in plans]), minlength=SIZES[0]) / n
    assert (found - expected).abs().max() < 0.04, (found, expected)  # 5 sd of a frequency at n = 4000
    assert (found[expected == 0] == 0).all()  # nothing outside the nucleus


def test_sampled_plans_are_sorted_and_scored_from_their_own_ideas(planner):
    prompt = random_codes(2, 1)
    cfg = SearchConfig(max_ideas=4, temperature=1.0, num_samples=6, length_penalty=0.7)
    ended = 0
    for i, plans in enumerate(sample(planner, prompt, None, cfg, torch.Generator().manual_seed(2))):
        assert [p.score for p in plans] == sorted((p.score for p in plans), reverse=True)
        for p in plans:
            assert p.logprob == pytest.approx(fresh_logprob(planner, prompt[i], None, p), abs=1e-4)
            assert p.score == pytest.approx(p.logprob / (len(p.codes) + p.ended) ** 0.7)
            assert len(p.idea_logprobs) == len(p.codes) >= 1
            end_share = p.logprob - sum(p.idea_logprobs)  # END's log-probability, or 0 for an unfinished plan
            assert end_share < -1e-6 if p.ended else end_share == pytest.approx(0.0, abs=1e-4)
            ended += p.ended
    assert ended > 0  # the test covers plans that end


@pytest.mark.parametrize("num_beams", [1, 3])
def test_a_one_idea_plan_scores_its_logprob(planner, num_beams):
    cfg = SearchConfig(max_ideas=1, num_beams=num_beams, length_penalty=1.0, allow_end=False)
    for p in search(planner, random_codes(1, 1), None, cfg)[0]:
        assert len(p.codes) == 1 and p.score == pytest.approx(p.logprob)


def test_sampling_reads_the_goal(planner):
    prompt, goal = random_codes(2, 2), random_codes(2, seed=3)
    cfg = SearchConfig(max_ideas=3, allow_end=False)  # one beam: greedy sampling
    free, aimed = search(planner, prompt, None, cfg), search(planner, prompt, goal, cfg)
    for a, b in zip(free, aimed):
        assert abs(a[0].logprob - b[0].logprob) > 1e-4 or not torch.equal(a[0].codes, b[0].codes)


def test_a_plan_has_one_idea_at_least_when_end_is_likeliest(planner, monkeypatch):
    logits = type(planner.head).logits

    def end_first(self, state, level, slices=None):
        out = logits(self, state, level, slices)
        if level == 0:
            out[:, 0] += 50.0  # END dominates wherever it is allowed
        return out

    monkeypatch.setattr(type(planner.head), "logits", end_first)
    prompt = random_codes(2, 1)
    for cfg in (
        SearchConfig(max_ideas=5, num_beams=2),
        SearchConfig(max_ideas=5),
        SearchConfig(max_ideas=5, temperature=1.0, num_samples=2),
    ):
        for plans in search(planner, prompt, None, cfg, torch.Generator().manual_seed(0)):
            assert plans and all(len(p.codes) == 1 and p.ended for p in plans)


@pytest.mark.parametrize("cfg", [SearchConfig(max_ideas=3, num_beams=2), SearchConfig(max_ideas=3, temperature=1.0)])
def test_a_search_shows_its_progress_only_when_asked(planner, cfg, capsys):
    prompt, seed = random_codes(1, 2), lambda: torch.Generator().manual_seed(0)
    quiet = search(planner, prompt, None, cfg, seed())
    beams = cfg.num_beams > 1
    direct = beam_search(planner, prompt, None, cfg) if beams else sample(planner, prompt, None, cfg, seed())
    assert capsys.readouterr().err == ""  # silent by default, through search and called directly
    shown = search(planner, prompt, None, cfg, seed(), progress=True)
    assert "planning" in capsys.readouterr().err  # asked for: search hands it on to the beam search or the sampler
    for plans in (direct, shown):  # the bar changes nothing
        assert [p.codes.tolist() for p in quiet[0]] == [p.codes.tolist() for p in plans[0]]
