"""Expansion that reads the planner's state: the global-to-local channel beside the story's text.

In Block Transformer and MegaByte the small local decoder of block t reads the big global model's hidden state
for that block. In hiertok the global model is the planner, and its state before idea t (`Planner.states`, no
goal) sums up every earlier idea at every planned level: a function of codes a receiver already has, so a
decoder that reads it keeps the code lossless.

The tokenizer is trained before the planner, so the decoder learns to read the state afterwards: a trained
tokenizer's decoder is fine-tuned on the planner's depth (its planned levels, its story context sampled as in
training, encoder and quantizer frozen), side by side from the same weights and batches: `state` adds the planner's
state to the decoder's prefix embedding (`model.decoder.state_dim`, zero at the start), `control` does not.
`blind` and `state_blind` are the same with no earlier text ever shown: the state as the only channel, as a
Block Transformer's local decoder has it. All are scored on held-out stories beside the tokenizer as trained
(`trained`):

- bits per byte of the whole lossless code (planner bits for the planned levels + decoder bits for the
  tokens, every earlier idea's text read), and the decoder's bits with no earlier text (a planned idea in a
  first decoding pass knows none of the plan's text);
- stories decoded greedily from their true planned codes, first sentence known: story_valid after one pass
  (every idea at once) and after passes until nothing changes;
- `hiertok eval planner`'s story_valid, grammar_valid and level-1 plan adherence: the planner's plans from
  held-out first sentences (beam 4), expanded by the arm's decoder (`Pipeline.idea_states` over prompt + plan).

    python experiments/planner_state.py --planner runs/story_context/fast-s0/planner --seeds 0 1 2 \\
        --arms control,state --out experiments/results/planner_state
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hiertok.codelength import corpus_bits
from hiertok.codes import Codes
from hiertok.config import TrainConfig
from hiertok.data.corpus import heldout_split, train_split
from hiertok.data.ideas import IdeaCollator, IdeaCorpus
from hiertok.data.story_state import CastChecker
from hiertok.errors import USER_ERRORS
from hiertok.eval_planner import evaluate_planner
from hiertok.evaluate import corpus_codes, idea_nats
from hiertok.pipeline import Pipeline
from hiertok.tokenizer import IdeaTokenizer
from hiertok.training import StepBatches, make_optimizer
from planner.shards import CodeCorpus

# trained: the tokenizer as trained; control / state: fine-tuned reading the story's text, without / with the
# planner's state; blind / state_blind: fine-tuned with no earlier text at all, without / with the state (the
# Block Transformer setting: the local decoder reads its own block's codes and the global model's state only).
ARMS = ("trained", "control", "state", "blind", "state_blind")


@dataclass
class ArmResult:
    arm: str
    seed: int
    finetune_s: float
    bpb_hier: float  # planner + decoder bits per byte, every earlier idea's text read
    bpb_tokens: float  # the decoder's part
    bpb_tokens_no_text: float  # the decoder's bits with no earlier text
    decoded_valid_one_pass: float  # true planned codes, first sentence known, every idea at once
    decoded_valid_until_stable: float  # ... decoding passes until nothing changes
    story_valid: float  # `hiertok eval planner`'s: generated from the first sentence, beam 4
    grammar_valid: float
    plan_adherence_level1: float


def with_state(tok: IdeaTokenizer, state_dim: int) -> IdeaTokenizer:
    """The same tokenizer whose decoder also reads a state of `state_dim` (its new weights zero: unchanged)."""
    cfg = tok.cfg
    cfg.model.decoder.state_dim = state_dim
    out = IdeaTokenizer(cfg, tok.bpe)
    missing, unexpected = out.model.load_state_dict(tok.model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("decoder.to_state.") for k in missing), (missing, unexpected)
    return out


def finetune(
    tok: IdeaTokenizer,
    corpus: IdeaCorpus,
    codes: Codes,
    levels: int,
    states: torch.Tensor | None,
    cfg: TrainConfig,
    blind: bool = False,
) -> float:
    """Train the decoder (encoder and quantizer frozen) to write each idea from its first `levels` codes, its story
    context sampled as in training (`blind`: none), and (with `states`) its state. Returns the seconds it took."""
    model = tok.model.train()
    for part in (model.encoder, model.quantizer):
        part.requires_grad_(False)
    vectors = model.quantizer.decode_indices(codes.flat()[:, :levels])
    collate = IdeaCollator(corpus, tok.bpe.pad_id, context=model.decoder.cfg.context)
    plan = StepBatches(corpus.num_ideas, cfg.batch_size, cfg.seed, 0, 1, np.diff(corpus.idea_offsets), cfg.bucket_pool)
    optimizer, schedule = make_optimizer(model.decoder, cfg)
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    for step in range(cfg.max_steps):
        batch = collate(plan.indices(step))
        context, known = model.sample_context(batch.context)
        if blind:
            context = torch.full_like(context, -1)
        state = None if states is None else states[batch.ideas[batch.targets]]
        cond = model.decoder_condition(
            batch.targets, context, vectors[batch.ideas], batch.tokens, batch.mask, known, state=state
        )
        inp, target, tmask = model.decoder.teacher_forcing(*batch.rows(batch.targets))
        loss = -(model.decoder.score(inp, cond, target).log_prob * tmask).sum() / tmask.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.decoder.parameters(), cfg.grad_clip)
        optimizer.step()
        schedule.step()
    model.eval()
    return time.perf_counter() - start


def score(
    arm: str, seed: int, seconds: float, pipe: Pipeline, held: Held, train_codes: CodeCorpus, prompts: int
) -> ArmResult:
    """The arm's codelength, story keeping from true codes and generations (module docstring)."""
    tok, planned = pipe.tokenizer, held.codes.prefix(pipe.levels)
    states = pipe.idea_states(planned)  # None for a decoder that reads none
    bits = corpus_bits(pipe, held.corpus, held.codes)
    blind, _ = idea_nats(tok, held.corpus, planned, text_context=False, states=states)
    first = [[held.corpus.idea(int(lo)).tolist()] for lo in held.corpus.doc_offsets[:-1]]
    check = CastChecker()
    valid = {}
    for passes in (1, 0):
        ids, _ = tok.decode_stories(planned, known=first, passes=passes, states=states)
        valid[passes] = float(np.mean([check.story_valid(tok.bpe.decode_batch(doc)) for doc in ids]))
    gen = evaluate_planner(pipe, held.docs, train_codes, synthetic=True, prompts=prompts, beams=4)
    return ArmResult(
        arm,
        seed,
        round(seconds, 1),
        bits.total / held.bytes,
        float(bits.token_bits.sum()) / held.bytes,
        float(blind.sum()) / math.log(2) / held.bytes,
        valid[1],
        valid[0],
        gen.story_valid,
        gen.grammar_valid,
        gen.plan_adherence_level1,
    )


@dataclass
class Held:
    """The held-out stories: their text, ideas and (full-depth) codes."""

    docs: list[str]
    corpus: IdeaCorpus
    codes: Codes

    @property
    def bytes(self) -> int:
        return sum(len(d.encode("utf-8")) for d in self.docs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--planner", required=True, help="a trained planner run (its tokenizer is fine-tuned)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="fine-tuning seeds (batches, context draws)")
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {', '.join(ARMS)}")
    ap.add_argument("--steps", type=int, default=800, help="fine-tuning steps of each arm")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--eval-docs", type=int, default=200, help="held-out stories scored")
    ap.add_argument("--prompts", type=int, default=100, help="held-out first sentences generated from")
    ap.add_argument("--out", type=Path, default=Path("experiments/results/planner_state"))
    args = ap.parse_args(argv)
    if any(a not in ARMS for a in args.arms.split(",")):
        print(f"planner_state: error: arms are {', '.join(ARMS)}", file=sys.stderr)
        return 2
    try:
        pipe = Pipeline.from_pretrained(args.planner)
    except USER_ERRORS as err:
        print(f"planner_state: error: {err}", file=sys.stderr)
        return 2
    tok_dir, base, levels = pipe.cfg.tokenizer, pipe.tokenizer, pipe.levels
    train = IdeaCorpus.build(train_split(base.cfg.data).docs(), base.bpe, base.segmentation)
    docs = list(itertools.islice(heldout_split(base.cfg.data).docs(), args.eval_docs))
    held_corpus = IdeaCorpus.build(docs, base.bpe, base.segmentation)
    held = Held(docs, held_corpus, corpus_codes(base, held_corpus))
    train_codes = corpus_codes(base, train)
    train_plans = CodeCorpus(train_codes.flat().numpy(), train.doc_offsets, {}).prefix(levels)
    rows = [score("trained", -1, 0.0, pipe, held, train_plans, args.prompts)]
    print(json.dumps(asdict(rows[-1])), flush=True)
    for seed, arm in itertools.product(args.seeds, [a for a in args.arms.split(",") if a != "trained"]):
        tok = IdeaTokenizer.from_pretrained(tok_dir)
        if arm.startswith("state"):
            tok = with_state(tok, pipe.planner.cfg.dim)
        arm_pipe = Pipeline(tok, pipe.planner, pipe.cfg)
        cfg = TrainConfig(seed=seed, lr=args.lr, max_steps=args.steps, warmup_steps=args.steps // 10)
        blind = arm.endswith("blind")
        seconds = finetune(tok, train, train_codes, levels, arm_pipe.idea_states(train_codes), cfg, blind)
        rows.append(score(arm, seed, seconds, arm_pipe, held, train_plans, args.prompts))
        print(json.dumps(asdict(rows[-1])), flush=True)
    write(rows, args)
    return 0


def write(rows: list[ArmResult], args: argparse.Namespace) -> None:
    """results.jsonl (one row per arm and seed) and results.md (mean ± sd over seeds) in --out."""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.jsonl").write_text("".join(json.dumps(asdict(r)) + "\n" for r in rows))
    keys = [k for k in ArmResult.__dataclass_fields__ if k not in ("arm", "seed")]
    lines = [
        f"`python {' '.join(sys.argv)}`",
        "",
        "| arm | seeds | " + " | ".join(keys) + " |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for arm in ARMS:
        mine = [r for r in rows if r.arm == arm]
        if not mine:
            continue
        cells = []
        for k in keys:
            v = [getattr(r, k) for r in mine]
            places = 4 if k.startswith("bpb") else 3  # fine-tuning seeds move the bits in the fourth place
            sd = f" ± {statistics.stdev(v):.{places}f}" if len(v) > 1 else ""
            cells.append(f"{statistics.mean(v):.{places}f}{sd}")
        lines.append(f"| {arm} | {len(mine)} | " + " | ".join(cells) + " |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
