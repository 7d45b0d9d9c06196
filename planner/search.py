"""Search over plans: beam search (optionally diverse, in groups), greedy, and temperature / top-k / top-p sampling.

A plan is a sequence of ideas, each L codes. The search moves one level at a time (the depth head), and
one idea at a time through the main transformer, whose KV cache follows the surviving beams. It is the
project's own: x-transformers' beam search works on flat token sequences and reorders only
self-attention caches, while a plan step is an idea of L codes.

Beam search records, at every idea boundary, each alive beam's "END here" extension as a finished plan;
the n-best list is the best finished plans (and, at the idea budget, the unfinished beams), ranked by
log-probability / ideas ** length_penalty.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import torch
from einops import repeat
from torch import Tensor
from tqdm.auto import tqdm

from hiertok.checks import MAX_BEAMS, MAX_IDEAS, MAX_SAMPLES, check_float, check_int, check_mass, check_temperature
from hiertok.errors import UserError
from hiertok.sampling import filter_logits
from planner.model import Planner, goal_steps_left

NEG = float("-inf")


@dataclass
class SearchConfig:
    """How to search for plans."""

    max_ideas: int = 8  # new ideas per plan at most
    num_beams: int = 1  # >1: beam search (unless sampling)
    diverse_groups: int = 1  # >1: diverse beam search with this many groups (num_beams divisible by it)
    diversity_penalty: float = 1.0  # subtracted per earlier group that chose the same code at the same step
    temperature: float = 0.0  # >0: sampling (num_samples independent plans)
    top_k: int = 0
    top_p: float = 1.0
    num_samples: int = 1
    length_penalty: float = 1.0  # rank = logprob / ideas ** length_penalty
    allow_end: bool = True  # False: every plan has exactly max_ideas ideas
    use_cache: bool = True  # False recomputes the main transformer over the whole plan (for tests)
    # Decoding the plan (Pipeline.expand): >1 decodes each idea greedily, then samples it again (this many - 1
    # times at most) while no candidate's re-encoding has the plan's level-1 code; keeps the first that has it
    # (greedy when none has).
    decode_candidates: int = 1
    # With a story context: decoding passes over the plan (Jacobi iteration; see IdeaTokenizer.decode_to_ids).
    # Pass 1 knows the prompt's text only; each later pass also the text the earlier planned ideas got in the
    # pass before. 0: until a pass changes nothing (the result of writing the ideas one after another).
    decode_passes: int = 0
    # Prompt ideas the planner sees at most: a longer prompt is cut to its last ones, shown as a continuation
    # window (as in training). 0: all of them (Pipeline uses the planner's training window).
    max_context: int = 0

    def validate(self) -> None:
        """Raise TypeError / UserError (one line naming the setting) for a setting out of range, whether or not it
        takes effect (a temperature is checked without sampling too)."""
        check_int("max_ideas", self.max_ideas, 1, MAX_IDEAS)
        check_int("num_beams", self.num_beams, 1, MAX_BEAMS)
        check_int("num_samples", self.num_samples, 1, MAX_SAMPLES)
        check_int("decode_candidates", self.decode_candidates, 1, MAX_SAMPLES)
        check_int("diverse_groups", self.diverse_groups, 1)
        check_float("diversity_penalty", self.diversity_penalty, 0.0)
        check_float("length_penalty", self.length_penalty)
        check_int("decode_passes", self.decode_passes, 0)  # 0: until nothing changes
        check_int("max_context", self.max_context, 0)
        check_temperature("temperature", self.temperature)
        check_int("top_k", self.top_k, 0)
        check_mass("top_p", self.top_p)
        if self.num_beams % self.diverse_groups:
            raise UserError(
                f"num_beams ({self.num_beams}) must be a multiple of diverse_groups ({self.diverse_groups})"
            )
        if self.temperature > 0 and self.num_beams > 1:
            raise UserError("choose beam search (num_beams > 1) or sampling (temperature > 0), not both")


@dataclass
class Plan:
    """One searched plan: per-level codes of its new ideas, whether the planner ended the document."""

    codes: Tensor  # (N, L) per-level codes (not unified ids)
    ended: bool
    logprob: float  # log-probability (nats) of the codes, and of END when ended
    score: float  # the ranking score: logprob / (N + ended) ** length_penalty
    idea_logprobs: list[float] = field(default_factory=list)  # per new idea (END's share is in logprob only)


class _Rows:
    """The search's per-row state: B prompts x K rows, main cache, depth state, chosen ids so far."""

    def __init__(self, planner: Planner, prompt: Tensor, goal: Tensor | None, k: int, cfg: SearchConfig):
        self.planner, self.k, self.use_cache = planner, k, cfg.use_cache
        self.b = prompt.shape[0]
        cut = 0 < cfg.max_context < prompt.shape[1]
        prompt = prompt[:, -cfg.max_context :] if cut else prompt
        self.cont = torch.full((self.b * k,), cut, dtype=torch.bool, device=prompt.device)
        self.prompt = repeat(prompt, "b t l -> (b k) t l", k=k)
        self.goal = None if goal is None else repeat(goal, "b l -> (b k) l", k=k)
        self.ideas = self.prompt[:, :0]  # (R, i, L) unified ids of planned ideas
        self.device = prompt.device
        self.idea_logprobs = torch.zeros(self.b * k, 0, device=self.device)
        # A planner of goals at a distance is asked for the goal as the plan's last idea (max_ideas ahead).
        self.goal_at = None
        if goal is not None and planner.goal_left is not None:
            at = self.prompt.shape[1] + cfg.max_ideas - 1
            self.goal_at = torch.full((self.b * k,), at, dtype=torch.long, device=self.device)
        h, self.cache = planner.hidden(planner.context(self.prompt, self.goal, None, self.cont, self.left(0)))
        self.h = h[:, -1]
        self.origin = torch.arange(self.b * k, device=self.device)  # row of the main cache each row descends from

    def left(self, first: int, count: int | None = None) -> Tensor | None:
        """Distances to the goal of inputs first .. (default: the start slot and every idea so far), or None."""
        if self.goal_at is None:
            return None
        count = self.prompt.shape[1] + self.ideas.shape[1] + 1 - first if count is None else count
        return goal_steps_left(self.goal_at, first, count)

    def reorder(self, rows: Tensor) -> None:
        self.ideas, self.idea_logprobs = self.ideas[rows], self.idea_logprobs[rows]
        self.origin, self.h = self.origin[rows], self.h[rows]

    def add_idea(self, ids: Tensor, logprobs: Tensor) -> None:
        """Append the chosen idea (R, L) and advance the main transformer by one step."""
        self.ideas = torch.cat([self.ideas, ids[:, None]], dim=1)
        self.idea_logprobs = torch.cat([self.idea_logprobs, logprobs[:, None]], dim=1)
        p = self.planner
        if self.use_cache:
            for inter in self.cache.attn_intermediates:
                if inter.cached_kv is not None:
                    inter.cached_kv = tuple(kv[self.origin] for kv in inter.cached_kv)
            x = p.embed_ideas(ids[:, None])
            if self.goal_at is not None:
                x = x + p.steps_left(self.left(self.prompt.shape[1] + self.ideas.shape[1], 1))
            h, self.cache = p.hidden(x, self.cache)
        else:
            full = torch.cat([self.prompt, self.ideas], dim=1)
            h, _ = p.hidden(p.context(full, self.goal, None, self.cont, self.left(0)))
        self.h, self.origin = h[:, -1], torch.arange(len(ids), device=self.device)


def search(
    planner: Planner,
    prompt: Tensor,
    goal: Tensor | None,
    cfg: SearchConfig,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> list[list[Plan]]:
    """Plans continuing each prompt: beam search when num_beams > 1, else greedy or sampled plans.

    Args:
        planner: the planner (eval mode is the caller's business).
        prompt: (B, T, L) per-level codes of each prompt's ideas (T may be 0; one length for the batch).
        goal: (B, L) per-level codes of a goal idea per prompt, or None.
        cfg: search settings.
        generator: random generator for sampling.
        progress: a progress bar over the planned ideas on stderr (for long searches in a terminal).

    Returns:
        Per prompt, its plans best first: the n-best beams, or the num_samples samples.
    """
    with torch.no_grad():
        cfg.validate()
        if cfg.num_beams > 1:
            return beam_search(planner, prompt, goal, cfg, progress)
        return sample(planner, prompt, goal, cfg, generator, progress)


def sample(
    planner: Planner,
    prompt: Tensor,
    goal: Tensor | None,
    cfg: SearchConfig,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> list[list[Plan]]:
    """num_samples independent plans per prompt: greedy at temperature 0, else filtered sampling."""
    with torch.no_grad():
        vocab, k = planner.vocab, cfg.num_samples
        rows = _Rows(planner, vocab.to_ids(prompt), None if goal is None else vocab.to_ids(goal), k, cfg)
        n = rows.b * k
        dev = rows.device
        logprob, done = torch.zeros(n, device=dev), torch.zeros(n, dtype=torch.bool, device=dev)
        for _ in _ideas(cfg.max_ideas, progress):
            state, ids, idea_lp = rows.h, [], torch.zeros(n, device=dev)
            for level in range(vocab.levels):
                logp = planner.head.logits(state, level).float().log_softmax(-1)
                if level == 0 and (not cfg.allow_end or rows.ideas.shape[1] == 0):  # a plan has >= 1 new idea
                    logp[:, 0] = NEG
                if cfg.temperature > 0:
                    probs = filter_logits(logp / cfg.temperature, cfg.top_k, cfg.top_p).softmax(-1)
                    choice = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                else:
                    choice = logp.argmax(-1)
                idea_lp += torch.where(done, 0.0, logp.gather(1, choice[:, None]).squeeze(1))
                if level == 0:
                    done_before, done = done, done | (choice == 0)
                ids.append(vocab.choice_to_id(level, choice))
                if level + 1 < vocab.levels:
                    state = planner.head.advance(state, level, ids[-1])
            logprob += idea_lp
            rows.add_idea(torch.stack(ids, dim=1), torch.where(done_before, 0.0, idea_lp))
            if bool(done.all()):
                break
        return [
            sorted(
                (_sampled_plan(rows, i * k + j, float(logprob[i * k + j]), cfg) for j in range(k)),
                key=lambda p: -p.score,
            )
            for i in range(rows.b)
        ]


def beam_search(
    planner: Planner, prompt: Tensor, goal: Tensor | None, cfg: SearchConfig, progress: bool = False
) -> list[list[Plan]]:
    """Beam search over plans, level by level; diverse beam search when cfg.diverse_groups > 1.

    END competes with the first level's codes: an END among a group's top candidates finishes that beam
    as a plan; the others continue. A prompt's search stops once it has num_beams finished plans
    (early stopping), or at max_ideas, where the alive beams are returned as unfinished plans.
    With one beam this is exactly greedy decoding.
    """
    with torch.no_grad():
        vocab, k = planner.vocab, cfg.num_beams
        groups = cfg.diverse_groups
        per = k // groups
        rows = _Rows(planner, vocab.to_ids(prompt), None if goal is None else vocab.to_ids(goal), k, cfg)
        b = rows.b
        dev = rows.device
        logprob = torch.full((b, k), NEG, device=dev)
        logprob[:, ::per] = 0.0  # identical beams at the start: one alive per group, so groups do not duplicate
        finished: list[list[Plan]] = [[] for _ in range(b)]
        closed = [False] * b  # a prompt with num_beams finished plans stops (early stopping)
        offsets = torch.arange(b, device=dev)[:, None] * k
        slices = planner.head.out_slices()  # split once per search, not at each of its level steps
        for _ in _ideas(cfg.max_ideas, progress):
            state, idea_lp = rows.h, torch.zeros(b * k, device=dev)
            chosen, parents = [], []  # per level: the rows' unified ids (R,), and the row each came from (R,)
            for level in range(vocab.levels):
                logp = planner.head.logits(state, level, slices).float().log_softmax(-1).view(b, k, -1)
                ends_here = level == 0 and cfg.allow_end and rows.ideas.shape[1] > 0  # a plan has >= 1 new idea
                if level == 0 and not ends_here:
                    logp[..., 0] = NEG
                choice, parent, step_lp, ended = _beam_step(logp, logprob, groups, cfg.diversity_penalty, ends_here)
                if ends_here:  # level 0: `rows` is still in step with the beams
                    for i, j in ended.nonzero().tolist():
                        if closed[i]:  # this prompt's search is over; its results must not depend on the batch
                            continue
                        total = float(logprob[i, j] + logp[i, j, 0])
                        finished[i].append(_plan(rows, i * k + j, total, True, cfg))
                flat = (parent + offsets).reshape(-1)
                state, idea_lp = state[flat], idea_lp[flat] + step_lp.reshape(-1)
                logprob = logprob.gather(1, parent) + step_lp
                chosen.append(vocab.choice_to_id(level, choice.reshape(-1)))
                parents.append(flat)
                if level + 1 < vocab.levels:
                    state = planner.head.advance(state, level, chosen[-1])
            origin, ids = _backtrack(chosen, parents)
            rows.reorder(origin)
            rows.add_idea(ids, idea_lp)
            closed = [len(plans) >= k for plans in finished]
            if all(closed):
                break
        for i in range(b):
            if len(finished[i]) < k:  # out of budget: the alive beams are plans too
                finished[i].extend(
                    _plan(rows, i * k + j, float(logprob[i, j]), False, cfg) for j in range(k) if logprob[i, j] > NEG
                )
        return [sorted(plans, key=lambda p: -p.score)[:k] for plans in finished]


def _ideas(count: int, progress: bool):
    """range(count), shown as a progress bar on stderr when asked (it closes itself when a search stops early)."""
    return tqdm(range(count), desc="planning", unit="idea", leave=False, disable=not progress, file=sys.stderr)


def _backtrack(chosen: list[Tensor], parents: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Follow one idea's back-pointers from its last level to its first.

    The rows are reordered by these pointers once per idea instead of at every level step: a level step is mostly
    per-call overhead on a CPU, and reordering every row's history there took up to L + 4 more calls a step.

    Args:
        chosen: per level, (R,) unified ids chosen by the rows as numbered after that level's step.
        parents: per level, (R,) the row (numbered before that level's step) each row extends.

    Returns:
        origin (R,): the row at the idea's start each final row descends from, and ids (R, L): its chosen ids.
    """
    row = torch.arange(len(chosen[-1]), device=chosen[-1].device)
    ids = []
    for level in reversed(range(len(chosen))):
        ids.append(chosen[level][row])
        row = parents[level][row]
    return row, torch.stack(ids[::-1], dim=1)


def _beam_step(
    logp: Tensor, logprob: Tensor, groups: int, penalty: float, ends_here: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One level's beam step, group by group (Vijayakumar et al.'s diverse beam search).

    Args:
        logp: (B, K, n) log-probabilities of this level's choices (index 0 = END at the first level).
        logprob: (B, K) running log-probabilities (-inf for dead beams).
        groups: beam groups; group g pays `penalty` per earlier group that chose the same code this step.
        ends_here: END (index 0) may be chosen: an END ranked within its group's top candidates ends
            that beam instead of continuing it.

    Returns:
        choice (B, K) index in the level slice, parent (B, K), the choice's log-probability (B, K),
        and ended (B, K): beams whose END extension finished a plan.
    """
    b, k, n = logp.shape
    per = k // groups
    used = torch.zeros(b, n, device=logp.device) if groups > 1 else None
    choices, parents = [], []
    ended = torch.zeros(b, k, dtype=torch.bool, device=logp.device)
    for g in range(groups):
        grp = slice(g * per, (g + 1) * per)
        cand = logprob[:, grp, None] + logp[:, grp]
        if g:  # the first group pays no penalty: nothing was chosen before it
            cand = cand - penalty * used[:, None, :]
        if ends_here:
            cutoff = cand.reshape(b, -1).topk(per, dim=-1).values[:, -1:]
            ended[:, grp] = (cand[..., 0] >= cutoff) & (cand[..., 0] > NEG)
            cand[..., 0] = NEG  # a fresh tensor: writing into it leaves logp as it was
        flat = cand.reshape(b, -1).topk(per, dim=-1).indices
        parent, choice = flat // n + g * per, flat % n
        choices.append(choice)
        parents.append(parent)
        if g + 1 < groups:
            used.scatter_add_(1, choice, torch.ones_like(choice, dtype=used.dtype))
    choice, parent = (choices[0], parents[0]) if groups == 1 else (torch.cat(choices, 1), torch.cat(parents, 1))
    step_lp = logp.reshape(b, -1).gather(1, parent * n + choice)
    return choice, parent, step_lp, ended


def _plan(rows: _Rows, r: int, logprob: float, ended: bool, cfg: SearchConfig) -> Plan:
    vocab = rows.planner.vocab
    n = rows.ideas.shape[1]
    return Plan(
        codes=vocab.to_codes(rows.ideas[r]),
        ended=ended,
        logprob=logprob,
        score=logprob / max(1, n + ended) ** cfg.length_penalty,
        idea_logprobs=rows.idea_logprobs[r].tolist(),
    )


def _sampled_plan(rows: _Rows, r: int, logprob: float, cfg: SearchConfig) -> Plan:
    """A sampled / greedy row: its ideas up to the first END."""
    ids = rows.ideas[r]
    ends = (ids[:, 0] == 0).nonzero()
    n = int(ends[0]) if len(ends) else ids.shape[0]
    vocab = rows.planner.vocab
    return Plan(
        codes=vocab.to_codes(ids[:n]),
        ended=bool(len(ends)),
        logprob=logprob,
        score=logprob / max(1, n + bool(len(ends))) ** cfg.length_penalty,
        idea_logprobs=rows.idea_logprobs[r, :n].tolist(),
    )
