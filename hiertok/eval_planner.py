"""`hiertok eval planner`: code bits, next-idea accuracy beside code baselines, and what generation does.

Generation metrics (from the first idea of each of `prompts` held-out documents, beam search):
- plan_adherence_level1 / _full: the planned ideas are decoded, each decoded idea is re-encoded, and
  its codes are compared with the plan's at level 1 / at every planned level (all levels, or the
  planner's `levels` prefix).
- grammar_valid (synthetic): fraction of stories (prompt + generated ideas) whose event sequence is valid
  under the story world's grammar; grammar_valid_unigram: the same for a contrast planner that samples
  whole ideas from the training codes' unigram distribution (as many as the held-out story has).
- goal_reached (synthetic): with the held-out story's final sentence as the goal, the fraction of plans
  whose last generated sentence has the goal's event.
With `prompts=0` nothing is generated and these metrics are None (e.g. in an ablation grid).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from hiertok.data.corpus import heldout_split
from hiertok.data.sources import is_synthetic
from hiertok.data.synthetic import StoryWorld
from hiertok.pipeline import Pipeline
from planner.evaluate import baseline_top1, teacher_forced_bits
from planner.search import Plan, SearchConfig
from planner.shards import CodeCorpus, encode_documents
from planner.train import data_config, load_codes
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
    plan_adherence_level1: float | None = None
    plan_adherence_full: float | None = None
    grammar_valid: float | None = None
    grammar_valid_unigram: float | None = None
    goal_reached: float | None = None
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


def _generate(pipe: Pipeline, prompts: torch.Tensor, goals: torch.Tensor | None, cfg: SearchConfig, chunk: int = 50):
    """Best plan per prompt and its decoded ideas, in chunks of prompts searched together."""
    plans, texts = [], []
    for lo in range(0, len(prompts), chunk):
        found = pipe.plans(prompts[lo : lo + chunk], None if goals is None else goals[lo : lo + chunk], cfg)
        best = [[per[0]] for per in found]
        plans += [b[0] for b in best]
        texts += [per[0] for per in pipe.expand(prompts[lo : lo + chunk], best)]
    return plans, texts


def evaluate_planner(
    pipe: Pipeline, docs: list[str], train_codes: CodeCorpus, synthetic: bool, prompts: int = 200, beams: int = 4
) -> PlannerEval:
    """Evaluate a planner on held-out documents.

    Args:
        pipe: tokenizer + planner.
        docs: held-out documents.
        train_codes: the planner's training codes (for the baselines and the unigram contrast).
        synthetic: the documents come from the story world (grammar and goal metrics).
        prompts: documents to generate from (0: teacher-forced metrics only).
        beams: beam width of the generations.
    """
    if prompts < 0:
        raise ValueError(f"prompts must be >= 0, got {prompts}")
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
    )
    if prompts == 0:
        return result
    usable = [d for d in range(held.num_docs) if len(held.doc(d)) >= 2][:prompts]
    if not usable:
        raise ValueError("no held-out document has two ideas or more to prompt with")
    first = torch.as_tensor(np.stack([held.doc(d)[0] for d in usable])).long()[:, None]
    last = torch.as_tensor(np.stack([held.doc(d)[-1] for d in usable])).long()
    max_ideas = max(len(held.doc(d)) for d in usable) + 4 if synthetic else pipe.cfg.search.max_ideas
    cfg = dataclasses.replace(pipe.cfg.search, num_beams=beams, temperature=0.0, diverse_groups=1, max_ideas=max_ideas)
    plans, texts = _generate(pipe, first, None, cfg)
    adh1, adh_full = _adherence(pipe, plans, texts)
    prompt_texts = [pipe.tokenizer.bpe.decode(pipe.tokenizer.split(docs[d])[0]) for d in usable]
    result.prompts, result.plan_adherence_level1, result.plan_adherence_full = len(usable), adh1, adh_full
    for i in range(min(5, len(usable))):
        result.examples.append(
            {
                "prompt": prompt_texts[i],
                "plan_level1": [int(c) for c in plans[i].codes[:, 0]],
                "text": "".join(texts[i]),
            }
        )
    if synthetic:
        world = StoryWorld()
        result.grammar_valid = float(
            np.mean([world.is_valid([world.classify(s) for s in [p, *t]]) for p, t in zip(prompt_texts, texts)])
        )
        goal_plans, goal_texts = _generate(pipe, first, last, cfg)
        goal_events = [world.classify(pipe.tokenizer.bpe.decode(pipe.tokenizer.split(docs[d])[-1])) for d in usable]
        result.goal_reached = float(
            np.mean([bool(t) and world.classify(t[-1]) == g for t, g in zip(goal_texts, goal_events)])
        )
        rng = np.random.default_rng(0)
        drawn = [train_codes.codes[rng.integers(0, len(train_codes.codes), len(held.doc(d)) - 1)] for d in usable]
        random_plans = [[Plan(torch.as_tensor(c).long(), True, 0.0, 0.0)] for c in drawn]
        random_texts = [per[0] for per in pipe.expand(first, random_plans)]
        result.grammar_valid_unigram = float(
            np.mean([world.is_valid([world.classify(s) for s in [p, *t]]) for p, t in zip(prompt_texts, random_texts)])
        )
    return result


def evaluate_planner_run(
    ckpt: str,
    data: str | None = None,
    max_docs: int | None = None,
    prompts: int = 200,
    beams: int = 4,
    decode_candidates: int | None = None,
) -> PlannerEval:
    """What `hiertok eval planner` runs: held-out documents of `data` (default: the planner's held-out part).

    `decode_candidates` overrides the run's `search.decode_candidates` (1: plain greedy decoding of plans).
    """
    pipe = Pipeline.from_pretrained(ckpt)
    if decode_candidates is not None:
        pipe.cfg.search.decode_candidates = decode_candidates
        pipe.cfg.search.validate()
    dcfg = data_config(pipe.cfg, pipe.tokenizer)
    split = heldout_split(dcfg, source=data, limit=max_docs)
    train_codes, _ = load_codes(pipe.cfg, pipe.tokenizer)
    synthetic = is_synthetic(data or dcfg.source)
    return evaluate_planner(pipe, list(split.docs()), train_codes, synthetic, prompts, beams)
