"""`hiertok eval planner`: code bits, next-idea accuracy beside code baselines, and what generation does.

Generation metrics (from the first idea of each of `prompts` held-out documents, beam search):
- planned_ideas: the mean number of ideas a continuation has (the best plan's, without the prompt): the story
  metrics below are easier over shorter continuations, so a search setting that shortens plans flatters them.
- plan_adherence_level1 / _full: the planned ideas are decoded, each decoded idea is re-encoded, and
  its codes are compared with the plan's at level 1 / at every planned level (all levels, or the
  planner's `levels` prefix).
- grammar_valid (synthetic): fraction of stories (prompt + generated ideas) whose event sequence is valid
  under the story world's grammar; grammar_valid_unigram: the same for a contrast planner that samples
  whole ideas from the training codes' unigram distribution (as many as the held-out story has).
- story_valid (synthetic): fraction of stories that are grammar-valid and keep their cast: every persistent
  slot (hero, friend, their kinds and traits, place, object, colour) keeps its first value, and the place
  changes only at a go_to_place event (`hiertok.data.story_state`); friend_is_hero: fraction of stories that
  name the hero's friend with the hero's own name (which the world never does, and story_valid allows);
  cast_breaks: how the other stories fail, counted by the first break ("grammar", "unparsed", or "SLOT@EVENT":
  the first sentence, of that event, that gives a persistent slot another value), most frequent first.
- goal_reached (synthetic): with the held-out story's final sentence as the goal, the fraction of plans
  whose last generated sentence has the goal's event; goal_exact: whose last sentence is the goal sentence (a
  plan whose last idea has the goal's codes is written with the goal's text: `Pipeline.expand`).
- name_carryover (text): over the prompts that introduce a character by name ("named lily", "called max"),
  the fraction of continuations that mention that name again.
- flat (with a flat baseline run): ideas (its planned_ideas), grammar_valid, story_valid (synthetic) and
  name_carryover of the flat LM's beam-search continuations of the same prompts (as many sentences at most),
  which have no plan: the contrast.
With `prompts=0` nothing is generated and these metrics are None (e.g. in an ablation grid).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from decoder.generate import GenerationConfig
from hiertok.data.corpus import heldout_split
from hiertok.data.sources import is_synthetic
from hiertok.data.story_state import CastChecker
from hiertok.errors import UserError
from hiertok.flat_generate import FlatGenerator
from hiertok.pipeline import Pipeline
from hiertok.rollout import VideoPlannerEval, evaluate_video_planner
from hiertok.video_eval import eval_videos
from planner.config import data_config, load_codes
from planner.evaluate import baseline_top1, teacher_forced_bits
from planner.search import Plan, SearchConfig
from planner.shards import CodeCorpus, encode_documents
from planner.windows import Windows


@dataclass
class PlannerEval:
    """Results of `hiertok eval planner` (JSON keys are the field names)."""

    ideas: int
    bits_per_idea: float
    bits_per_idea_by_level: dict[str, float]
    next_idea_top1: dict[str, float]
    next_idea_top5: dict[str, float]
    unigram_top1: dict[str, float]
    bigram_top1: dict[str, float]
    prompts: int
    beams: int
    decode_candidates: int
    decode_passes: int  # 0: until nothing changes
    planned_ideas: float | None = None
    plan_adherence_level1: float | None = None
    plan_adherence_full: float | None = None
    grammar_valid: float | None = None
    story_valid: float | None = None
    friend_is_hero: float | None = None
    cast_breaks: dict[str, int] | None = None
    grammar_valid_unigram: float | None = None
    goal_reached: float | None = None
    goal_exact: float | None = None
    name_carryover: float | None = None
    named_prompts: int | None = None
    flat: dict | None = None
    examples: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _adherence(pipe: Pipeline, plans: list[Plan], texts: list[list[str]]) -> tuple[float, float]:
    """Fraction of planned ideas whose decoded text re-encodes to the plan's level-1 code / all codes.

    An idea decoded to the empty string cannot be re-encoded and counts as not adhering.
    """
    planned = torch.cat([p.codes for p in plans]) if plans else torch.zeros(0, pipe.levels)
    ideas = [pipe.tokenizer.bpe.encode(t) for per in texts for t in per]
    keep = [i for i, ids in enumerate(ideas) if ids]
    if not keep:
        return 0.0, 0.0
    again = pipe.tokenizer.encode_ideas([ideas[i] for i in keep])[:, : pipe.levels]
    planned = planned[keep]
    n = len(ideas)
    return float((again[:, 0] == planned[:, 0]).sum()) / n, float((again == planned).all(1).sum()) / n


@dataclass
class HeldOutPrompts:
    """What `evaluate_planner` generates from: the first idea of each held-out document that has two or more."""

    docs: list[int]  # the documents prompted, as indices of the held-out documents
    first: torch.Tensor  # (P, 1, L) the prompts' codes (each document's first idea)
    last: torch.Tensor  # (P, L) each document's last idea's codes: the goal of a goal-directed plan
    ideas: list[list[list[int]]]  # per prompt, [its first idea's token ids]
    goal_ideas: list[list[int]]  # per prompt, its document's last idea's token ids
    search: SearchConfig  # greedy beam search of the evaluation's width, `max_ideas` ideas at most

    def __len__(self) -> int:
        return len(self.docs)


def held_out_prompts(
    pipe: Pipeline,
    docs: list[str],
    count: int,
    synthetic: bool,
    beams: int = 4,
    held: CodeCorpus | None = None,
) -> HeldOutPrompts:
    """The prompts `evaluate_planner` generates from (and scripts that look at its generations).

    Args:
        pipe: tokenizer + planner.
        docs: held-out documents.
        count: documents to prompt with at most (those with two ideas or more, in order).
        synthetic: the documents come from the story world: a plan may run 4 ideas past the longest document
            prompted (else the run's `search.max_ideas`).
        beams: beam width of the search.
        held: the documents' codes cut to the planner's levels, when the caller has them (else encoded here).

    Returns:
        HeldOutPrompts.
    """
    if held is None:
        codes, offsets = encode_documents(pipe.tokenizer, docs)
        held = CodeCorpus(codes, offsets, {}).prefix(pipe.levels)
    usable = [d for d in range(held.num_docs) if len(held.doc(d)) >= 2][:count]
    if not usable:
        raise UserError("no held-out document has two ideas or more to prompt with")
    max_ideas = max(len(held.doc(d)) for d in usable) + 4 if synthetic else pipe.cfg.search.max_ideas
    split = [pipe.tokenizer.split(docs[d]) for d in usable]
    return HeldOutPrompts(
        docs=usable,
        first=torch.as_tensor(np.stack([held.doc(d)[0] for d in usable])).long()[:, None],
        last=torch.as_tensor(np.stack([held.doc(d)[-1] for d in usable])).long(),
        ideas=[[ideas[0]] for ideas in split],
        goal_ideas=[ideas[-1] for ideas in split],
        search=dataclasses.replace(
            pipe.cfg.search, num_beams=beams, temperature=0.0, diverse_groups=1, max_ideas=max_ideas
        ),
    )


def best_plans(
    pipe: Pipeline, prompts: HeldOutPrompts, toward_goals: bool = False, chunk: int = 50
) -> tuple[list[Plan], list[list[str]]]:
    """Each prompt's best plan and its decoded sentences, `chunk` prompts searched together.

    Args:
        pipe: tokenizer + planner.
        prompts: `held_out_prompts`.
        toward_goals: search each plan toward its document's last idea; a plan that arrives at it ends with the
            goal's own sentence (`Pipeline.expand`).
        chunk: prompts per search.

    Returns:
        The plans (one a prompt) and, per prompt, the plan's decoded sentences.
    """
    plans, texts = [], []
    goals = prompts.last if toward_goals else None
    for lo in range(0, len(prompts), chunk):
        part = slice(lo, lo + chunk)
        found = pipe.plans(prompts.first[part], None if goals is None else goals[part], prompts.search)
        best = [[per[0]] for per in found]
        plans += [b[0] for b in best]
        expanded = pipe.expand(
            prompts.first[part],
            best,
            prompt_ideas=prompts.ideas[part],
            goal_codes=None if goals is None else goals[part],
            goal_ideas=None if goals is None else prompts.goal_ideas[part],
        )
        texts += [per[0] for per in expanded]
    return plans, texts


def evaluate_planner(
    pipe: Pipeline,
    docs: list[str],
    train_codes: CodeCorpus,
    synthetic: bool,
    prompts: int = 200,
    beams: int = 4,
    flat: FlatGenerator | None = None,
) -> PlannerEval:
    """Evaluate a planner on held-out documents.

    Args:
        pipe: tokenizer + planner.
        docs: held-out documents.
        train_codes: the planner's training codes (for the baselines and the unigram contrast).
        synthetic: the documents come from the story world (grammar, cast and goal metrics).
        prompts: documents to generate from (0: teacher-forced metrics only).
        beams: beam width of the generations.
        flat: a flat LM whose continuations of the same prompts are scored as the contrast.
    """
    if prompts < 0:
        raise UserError(f"prompts must be >= 0, got {prompts}")
    codes, offsets = encode_documents(pipe.tokenizer, docs)
    held = CodeCorpus(codes, offsets, {}).prefix(pipe.levels)
    tf = teacher_forced_bits(pipe.planner, Windows(held, pipe.cfg.data.window), topk=True)
    unigram, bigram = baseline_top1(train_codes, held)
    result = PlannerEval(
        ideas=tf.ideas,
        bits_per_idea=tf.bits_per_idea,
        bits_per_idea_by_level=tf.bits_per_idea_by_level,
        next_idea_top1=tf.next_idea_top1,
        next_idea_top5=tf.next_idea_top5,
        unigram_top1=unigram,
        bigram_top1=bigram,
        prompts=0,
        beams=beams,
        decode_candidates=pipe.cfg.search.decode_candidates,
        decode_passes=pipe.cfg.search.decode_passes,
    )
    if prompts == 0:
        return result
    asked = held_out_prompts(pipe, docs, prompts, synthetic, beams, held)
    plans, texts = best_plans(pipe, asked)
    adh1, adh_full = _adherence(pipe, plans, texts)
    prompt_texts = [pipe.tokenizer.join(ideas) for ideas in asked.ideas]
    result.prompts, result.plan_adherence_level1, result.plan_adherence_full = len(asked), adh1, adh_full
    for i in range(min(5, len(asked))):
        result.examples.append(
            {
                "prompt": prompt_texts[i],
                "plan_level1": [int(c) for c in plans[i].codes[:, 0]],
                "text": "".join(texts[i]),
            }
        )
    check = CastChecker() if synthetic else None
    names = [named_character(p) for p in prompt_texts]
    scores = _continuation_scores(prompt_texts, texts, check, names)
    result.planned_ideas = scores.pop("ideas")
    for key, value in scores.items():
        setattr(result, key, value)
    if check is not None:
        _, goal_texts = best_plans(pipe, asked, toward_goals=True)
        goals = [pipe.tokenizer.bpe.decode(ids).strip() for ids in asked.goal_ideas]
        goal_events = [check.world.classify(g) for g in goals]
        result.goal_reached = float(
            np.mean([bool(t) and check.world.classify(t[-1]) == g for t, g in zip(goal_texts, goal_events)])
        )
        result.goal_exact = float(np.mean([bool(t) and t[-1].strip() == g for t, g in zip(goal_texts, goals)]))
        rng = np.random.default_rng(0)
        drawn = [train_codes.codes[rng.integers(0, len(train_codes.codes), len(held.doc(d)) - 1)] for d in asked.docs]
        random_plans = [[Plan(torch.as_tensor(c).long(), True, 0.0, 0.0)] for c in drawn]
        random_texts = [per[0] for per in pipe.expand(asked.first, random_plans, prompt_ideas=asked.ideas)]
        result.grammar_valid_unigram = float(
            np.mean([check.grammar_valid([p, *t]) for p, t in zip(prompt_texts, random_texts)])
        )
    if not synthetic:
        result.named_prompts = sum(n is not None for n in names)
    if flat is not None:
        written = flat.continue_ideas(prompt_texts, asked.search.max_ideas, GenerationConfig(num_beams=beams))
        result.flat = {"examples": [{"prompt": p, "text": "".join(t)} for p, t in list(zip(prompt_texts, written))[:5]]}
        result.flat.update(_continuation_scores(prompt_texts, written, check, names))
    return result


def _continuation_scores(
    prompts: list[str], continuations: list[list[str]], check: CastChecker | None, names: list[str | None]
) -> dict:
    """What the module docstring's story metrics say of continuations (per prompt, its generated sentences), the
    planned ones or the flat LM's alike: `ideas` (their mean count), then with `check` (the synthetic world)
    grammar_valid, story_valid, friend_is_hero and cast_breaks, else name_carryover of the prompts' `names`."""
    stories = [[p, *t] for p, t in zip(prompts, continuations)]
    scores: dict = {"ideas": float(np.mean([len(t) for t in continuations]))}
    if check is None:
        scores["name_carryover"] = name_carryover(names, ["".join(t) for t in continuations])
        return scores
    for key in ("grammar_valid", "story_valid", "friend_is_hero"):
        scores[key] = float(np.mean([getattr(check, key)(story) for story in stories]))
    scores["cast_breaks"] = check.count_breaks(stories)
    return scores


NAMED = re.compile(r"\b(?:named|called)\s+([A-Za-z]+)", re.IGNORECASE)


def named_character(text: str) -> str | None:
    """The name a sentence introduces a character by ("a girl named lily" -> "lily"), or None."""
    m = NAMED.search(text)
    return m.group(1) if m else None


def name_carryover(names: list[str | None], continuations: list[str]) -> float | None:
    """Fraction of continuations that mention their prompt's introduced name again (prompts without one are
    skipped; None when no prompt has one)."""
    pairs = [(n, c) for n, c in zip(names, continuations) if n is not None]
    if not pairs:
        return None
    return float(np.mean([bool(re.search(rf"\b{re.escape(n)}\b", c, re.IGNORECASE)) for n, c in pairs]))


def evaluate_planner_run(
    ckpt: str,
    data: str | None = None,
    max_docs: int | None = None,
    prompts: int = 200,
    beams: int = 4,
    decode_candidates: int | None = None,
    baseline: str | None = None,
    decode_passes: int | None = None,
    tokenizer: str | None = None,
    device: str | torch.device = "cpu",
    context_frames: int = 4,
    rollout_frames: int = 16,
    goal_steps: int = 8,
) -> PlannerEval | VideoPlannerEval:
    """What `hiertok eval planner` runs: held-out documents of `data` (default: the planner's held-out part).

    `decode_candidates` overrides the run's `search.decode_candidates` (1: plain greedy decoding of plans),
    `decode_passes` its `search.decode_passes` (0: until nothing changes);
    `baseline`: a flat LM run whose continuations of the same prompts are scored beside the planner's.
    A video run is scored by `hiertok.rollout.evaluate_video_planner` (rollouts of `rollout_frames` frames from
    `context_frames`, with `beams`; toward the true frame `goal_steps` ahead for a planner of goals at a distance).
    """
    pipe = Pipeline.from_pretrained(ckpt, tokenizer=tokenizer, device=device)
    if pipe.tokenizer.is_video:
        videos = eval_videos(data_config(pipe.cfg, pipe.tokenizer), data, max_docs)
        return evaluate_video_planner(pipe, videos, context_frames, rollout_frames, beams, goal_steps)
    if decode_candidates is not None:
        pipe.cfg.search.decode_candidates = decode_candidates
    if decode_passes is not None:
        pipe.cfg.search.decode_passes = decode_passes
    pipe.cfg.search.validate()
    dcfg = data_config(pipe.cfg, pipe.tokenizer)
    split = heldout_split(dcfg, source=data, limit=max_docs)
    train_codes, _ = load_codes(pipe.cfg, pipe.tokenizer)
    synthetic = is_synthetic(data or dcfg.source)
    flat = FlatGenerator.from_pretrained(baseline) if baseline is not None else None
    return evaluate_planner(pipe, list(split.docs()), train_codes, synthetic, prompts, beams, flat)
