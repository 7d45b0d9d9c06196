"""`hiertok generate`: a prompt continued by a planner run (plan, then expand) or by a flat LM run (no plan), with
the same flags where they mean the same thing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hiertok.config import parse_device
from hiertok.errors import UserError


def generate_command(args: argparse.Namespace) -> int:
    """`hiertok generate`: a planner run plans and writes, a flat LM writes token by token; returns the exit code."""
    from hiertok.cli_io import read_text
    from hiertok.data.segment import normalize_text
    from hiertok.pipeline import Pipeline

    if args.frames is not None:
        from hiertok.cli_video import generate_frames

        return generate_frames(args)
    for flag, given in (
        ("--steps", args.steps is not None),
        ("--out", args.out is not None),
        ("--gif", args.gif is not None),
        ("--truth", args.truth is not None),
        ("--goal-frame", args.goal_frame is not None),
    ):
        if given:
            raise UserError(f"{flag} goes with --frames (a video run's rollout); a text prompt uses --sentences")
    prompt = normalize_text(args.prompt if args.prompt is not None else read_text(None)).strip("\n")
    if _is_flat_run(args.ckpt):
        return _generate_flat(args, prompt)
    pipe = Pipeline.from_pretrained(args.ckpt, tokenizer=args.tokenizer, device=parse_device(args.device))
    pipe.tokenizer.require_text("generate without --frames")
    result = pipe.generate(
        prompt,
        sentences=args.sentences,
        beams=args.beams,
        diverse_groups=args.diverse_groups,
        sample=args.sample,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        num_samples=args.num_samples,
        goal=args.goal,
        allow_end=False if args.no_end else None,
        decode_candidates=args.decode_candidates,
        decode_passes=args.decode_passes,
        seed=args.seed,
        n_best=None if args.json else 1,  # decode only what is printed
        progress=sys.stderr.isatty(),  # a long search shows where it is
    )
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    if args.show_plan:
        best = result.best
        print(
            f"plan: {len(best.ideas)} ideas, log-probability {best.logprob:.2f}, score {best.score:.3f}"
            + (", ends the document" if best.ended else "")
        )
        for i, (codes, idea, lp) in enumerate(zip(best.codes, best.ideas, best.idea_logprobs), 1):
            print(f"  {i:2d} [{lp:7.2f}] {' '.join(map(str, codes))}  ->{idea}")
    print(result.prompt + result.best.text)
    return 0


def _is_flat_run(run_dir: str) -> bool:
    """A flat baseline run (`hiertok train baseline`): its config records the parameter count it matched."""
    from omegaconf import OmegaConf

    from hiertok.tokenizer import BPE_FILE
    from hiertok.training import CONFIG_FILE

    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file() or (Path(run_dir) / BPE_FILE).is_file():
        return False

    try:
        cfg = OmegaConf.load(path)
    except Exception:  # noqa: BLE001 - not a readable run config: let the planner loader report it
        return False
    return OmegaConf.is_dict(cfg) and "params_target" in cfg


def _generate_flat(args: argparse.Namespace, prompt: str) -> int:
    """`hiertok generate` with a flat LM run: the same prompt continued token by token (no plan)."""
    from decoder.generate import GenerationConfig
    from hiertok.flat_generate import FlatGenerator
    from planner.search import SearchConfig

    for flag, given in (
        ("--goal", args.goal is not None),
        ("--show-plan", args.show_plan),
        ("--diverse-groups", args.diverse_groups is not None),
        ("--decode-candidates", args.decode_candidates is not None),
        ("--decode-passes", args.decode_passes is not None),
        ("--no-end", args.no_end),
    ):
        if given:
            raise UserError(f"{flag} needs a planner run: {args.ckpt} is a flat LM, which writes without a plan")
    beams = 1 if args.sample or args.beams is None else args.beams
    sentences = 8 if args.sentences is None else args.sentences
    samples = args.num_samples if args.sample and args.json else 1  # without --json only one is printed
    temperature = args.temperature if args.sample else 0.0
    SearchConfig(
        max_ideas=sentences,
        num_beams=beams,
        temperature=temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        num_samples=samples,
    ).validate()  # the planner's checks of the same settings, one line each
    cfg = GenerationConfig(temperature=temperature, top_k=args.top_k, top_p=args.top_p, num_beams=beams)
    gen = FlatGenerator.from_pretrained(args.ckpt, device=parse_device(args.device))
    texts = gen.continue_text([prompt] * samples, sentences, cfg=cfg, seed=args.seed)
    if args.json:
        print(json.dumps({"prompt": prompt, "text": texts[0], "continuations": texts}, ensure_ascii=False))
    else:
        print(prompt + texts[0])
    return 0
