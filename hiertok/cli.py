"""`hiertok` command line: parses arguments and calls library functions; errors are one line, exit 2.

hiertok demo
hiertok train tokenizer --config configs/tokenizer/tiny.yaml --out runs/tok [--resume] [key=value ...]
hiertok eval tokenizer --ckpt runs/tok --data synthetic --out tok.json
hiertok train planner --config configs/planner/tiny.yaml --out runs/plan tokenizer=runs/tok [--resume] [key=value ...]
hiertok train baseline --config configs/baseline/tiny.yaml --out runs/flat tokenizer=runs/tok match=runs/plan
hiertok eval planner --ckpt runs/plan --data synthetic --out plan.json
hiertok eval codelength --ckpt runs/plan --baseline runs/flat --data synthetic --out bits.json
hiertok generate --ckpt runs/plan --prompt "..." [--sentences N] [--beams B] [--goal "..."] [--show-plan] [--json]
hiertok generate --ckpt runs/flat --prompt "..." [--sentences N] [--beams B | --sample ...]   # the flat LM
hiertok encode --ckpt runs/tok [FILE]        # documents (one per line, or JSONL {"text": ...}) -> JSONL codes
hiertok decode --ckpt runs/tok [FILE]        # JSONL codes -> text
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hiertok import __version__
from hiertok.config import parse_device
from hiertok.errors import UserError

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:N, mps")


def _add_tokenizer(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tokenizer", default=None, help="the planner's tokenizer run, where it is not where recorded")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hiertok", description="Think in ideas before words: idea tokenizer, planner and decoder."
    )
    p.add_argument("--version", action="version", version=f"hiertok {__version__}")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error, not only its one line")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="offline: train a tiny tokenizer on the synthetic corpus, evaluate, show")
    demo.add_argument("--out", "-o", default="runs/demo", help="run directory (default: runs/demo)")
    demo.add_argument("--stories", type=int, default=100, help="held-out stories the tokenizer is evaluated on")
    demo.add_argument("--prompts", type=int, default=100, help="held-out prompts the planner generates from")
    demo.add_argument("overrides", nargs="*", help="config overrides key=value")

    train = sub.add_parser("train", help="train a stage")
    train_sub = train.add_subparsers(dest="stage", required=True, metavar="STAGE")
    tt = train_sub.add_parser("tokenizer", help="stage 1: the idea tokenizer")
    tt.add_argument("--config", "-c", help="YAML config (overrides of the defaults)")
    tt.add_argument("--out", "-o", required=True, help="run directory")
    tt.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    tt.add_argument("overrides", nargs="*", help="config overrides key=value, e.g. train.lr=3e-4")

    tp = train_sub.add_parser("planner", help="stage 3: the planner over a tokenizer's codes (add tokenizer=RUN_DIR)")
    tp.add_argument("--config", "-c", help="YAML config (overrides of the defaults)")
    tp.add_argument("--out", "-o", required=True, help="run directory")
    tp.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    tp.add_argument("overrides", nargs="*", help="config overrides key=value, e.g. tokenizer=runs/tok")

    tb = train_sub.add_parser("baseline", help="the flat token-level LM (add tokenizer=RUN_DIR [match=PLANNER_RUN])")
    tb.add_argument("--config", "-c", help="YAML config (overrides of the defaults)")
    tb.add_argument("--out", "-o", required=True, help="run directory")
    tb.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    tb.add_argument("overrides", nargs="*", help="config overrides key=value, e.g. tokenizer=runs/tok")

    gen = sub.add_parser("generate", help="prompt -> planned ideas -> text")
    gen.add_argument("--ckpt", required=True, help="planner run directory (or a flat baseline run: no plan)")
    _add_tokenizer(gen)
    _add_device(gen)
    gen.add_argument("--prompt", "-p", default=None, help="text to continue (default: read stdin)")
    gen.add_argument("--sentences", "-n", type=int, default=None, help="new ideas at most (default: the config's)")
    gen.add_argument("--beams", "-b", type=int, default=None, help="beam width (default: the config's)")
    gen.add_argument("--diverse-groups", type=int, default=None, help="diverse beam search with this many groups")
    gen.add_argument("--sample", action="store_true", help="sample plans instead of beam search")
    gen.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    gen.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass")
    gen.add_argument("--top-k", type=int, default=0, help="sample among the k most likely codes (0: all)")
    gen.add_argument("--num-samples", type=int, default=1, help="plans to sample")
    gen.add_argument("--goal", default=None, help="a final sentence the plan should arrive at")
    gen.add_argument("--no-end", action="store_true", help="always plan --sentences ideas (no early end)")
    gen.add_argument("--show-plan", action="store_true", help="print each planned idea's codes and score")
    gen.add_argument("--json", action="store_true", help="print a JSON record with the n-best plans")
    gen.add_argument(
        "--decode-candidates",
        type=int,
        default=None,
        metavar="N",
        help="decode each planned idea N times and keep the one that follows the plan (default: the run's)",
    )
    gen.add_argument(
        "--decode-passes",
        type=int,
        default=None,
        metavar="N",
        help="with a story context: decoding passes over the plan (0: until nothing changes; default: the run's)",
    )
    gen.add_argument("--seed", type=int, default=0, help="sampling seed")
    gen.add_argument("--frames", default=None, help="a video run: context frames, FILE.npy (T, H, W) or (B, T, H, W)")
    gen.add_argument("--steps", type=int, default=None, help="with --frames: frames to generate (default: the run's)")
    gen.add_argument("--out", default=None, help="with --frames: write the context and the rollout to FILE.npy")
    gen.add_argument("--gif", default=None, help="with --frames: draw the context and the rollout as FILE.gif")
    gen.add_argument("--truth", default=None, help="with --gif: the true videos (whole, FILE.npy) drawn beside")
    gen.add_argument(
        "--goal-frame",
        default=None,
        help="with --frames: a goal for frame --steps, FILE.npy (H, W) or (B, H, W) (a planner of goals at a distance)",
    )

    ev = sub.add_parser("eval", help="evaluate a trained stage")
    ev_sub = ev.add_subparsers(dest="stage", required=True, metavar="STAGE")
    et = ev_sub.add_parser("tokenizer", help="reconstruction per prefix, code usage, bits per byte")
    et.add_argument("--ckpt", required=True, help="tokenizer run directory")
    _add_device(et)
    et.add_argument(
        "--data",
        default=None,
        help="'synthetic', a local file/directory or a hub dataset (default: the held-out part of the training source)",
    )
    et.add_argument(
        "--max-docs", type=int, default=None, help="documents to evaluate (default: the config's eval_docs)"
    )
    et.add_argument("--out", "-o", help="write the results as JSON here")
    ep = ev_sub.add_parser("planner", help="planner bits per idea, next-idea accuracy, plan adherence, grammar")
    ep.add_argument("--ckpt", required=True, help="planner run directory")
    _add_tokenizer(ep)
    _add_device(ep)
    ep.add_argument("--data", default=None, help="as for eval tokenizer (default: the planner's held-out data)")
    ep.add_argument("--max-docs", type=int, default=None, help="held-out documents (default: the config's)")
    ep.add_argument("--prompts", type=int, default=200, help="held-out stories to generate from (0: no generation)")
    ep.add_argument("--beams", type=int, default=4, help="beam width of the generations")
    ep.add_argument(
        "--decode-candidates",
        type=int,
        default=None,
        metavar="N",
        help="decodings per planned idea (default: the run's)",
    )
    ep.add_argument(
        "--decode-passes",
        type=int,
        default=None,
        metavar="N",
        help="decoding passes over each plan (0: until nothing changes; default: the run's)",
    )
    ep.add_argument(
        "--baseline", default=None, help="a flat LM run: its continuations of the same prompts are scored beside"
    )
    ep.add_argument("--context-frames", type=int, default=4, help="a video run: rollouts start from this many frames")
    ep.add_argument("--rollout-frames", type=int, default=16, help="a video run: frames each rollout generates")
    ep.add_argument(
        "--goal-steps",
        type=int,
        default=8,
        help="a video planner of goals at a distance: goal-conditioned rollouts toward the true frame this far ahead",
    )
    ep.add_argument("--out", "-o", help="write the results as JSON here")
    ec = ev_sub.add_parser("codelength", help="hierarchical vs flat bits per byte on the same held-out bytes")
    ec.add_argument("--ckpt", required=True, help="planner run directory")
    _add_tokenizer(ec)
    _add_device(ec)
    ec.add_argument("--baseline", default=None, help="flat baseline run directory")
    ec.add_argument("--data", default=None, help="as for eval tokenizer (default: the planner's held-out data)")
    ec.add_argument("--max-docs", type=int, default=None, help="held-out documents (default: the config's)")
    ec.add_argument("--out", "-o", help="write the results as JSON here")

    cfg = sub.add_parser("config", help="the configs that ship with hiertok")
    cfg_sub = cfg.add_subparsers(dest="action", required=True, metavar="ACTION")
    cfg_sub.add_parser("list", help="the shipped configs' names")
    show = cfg_sub.add_parser("show", help="print a shipped config (e.g. tokenizer/tiny), to copy and edit")
    show.add_argument("name", help="STAGE/NAME, e.g. tokenizer/tiny")

    enc = sub.add_parser("encode", help="documents (or .npy videos of a video run) -> idea codes (JSONL)")
    enc.add_argument("--ckpt", required=True, help="tokenizer run directory")
    _add_device(enc)
    enc.add_argument(
        "file",
        nargs="?",
        help="input (default: stdin): one document per line, or JSONL with 'text'; a video run: FILE.npy",
    )

    dec = sub.add_parser("decode", help="idea codes (JSONL from encode) -> text")
    dec.add_argument("--ckpt", required=True, help="tokenizer run directory")
    _add_device(dec)
    dec.add_argument("file", nargs="?", help="input (default: stdin): JSONL lines with 'codes'")
    dec.add_argument("--levels", "-k", type=int, default=None, help="decode from the first k levels only")
    dec.add_argument(
        "--passes",
        type=int,
        default=1,
        help="with a story context: decoding passes, each idea reading the text its earlier ideas got in the "
        "pass before (1: every idea from its own codes; 0: until nothing changes)",
    )
    dec.add_argument("--json", action="store_true", help="print JSON lines {'text': ...}")
    dec.add_argument("--out", help="a video run: write the decoded frames (B, T, H, W) to this .npy file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hiertok` console script. Returns the process exit code."""
    args = build_parser().parse_args(argv)
    from hiertok.errors import USER_ERRORS  # imported late: `hiertok --help` stays fast

    try:
        from hiertok.cli_io import check_flags, check_output

        check_flags(args)
        check_output(getattr(args, "out", None) if args.command == "eval" else None)
        code = _dispatch(args)
    except BrokenPipeError:  # the reader left (`hiertok encode ... | head -1`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141
    except USER_ERRORS as e:
        if args.debug:
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"hiertok: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hiertok: interrupted", file=sys.stderr)
        return 130
    _leave_process_group()
    return code


def _leave_process_group() -> None:
    """End a torchrun / accelerate-launch run's process group, once every stage has returned (and its DDP model is
    gone: hiertok.training.end_stage says why). Only after success: a failed rank leaves it to the launcher, since
    destroying a group while other ranks are still in a collective deadlocks."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from hiertok.demo import run_demo

        run_demo(Path(args.out), args.overrides, prompts=args.prompts, stories=args.stories)
        return 0
    if args.command == "generate":
        from hiertok.cli_generate import generate_command

        return generate_command(args)
    if args.command == "config":
        from hiertok.shipped_configs import config_names, config_path

        sys.stdout.write(
            "\n".join(config_names()) + "\n" if args.action == "list" else config_path(args.name).read_text()
        )
        return 0
    if args.command == "train":
        from hiertok.config import load_config

        if args.stage == "planner":
            from planner.config import PlannerConfig as Config
            from planner.train import train
        elif args.stage == "baseline":
            from hiertok.flat_lm import BaselineConfig as Config
            from hiertok.train_baseline import train
        else:
            from hiertok.tokenizer import TokenizerConfig as Config
            from hiertok.train_tokenizer import train
        cfg = load_config(Config, args.config, args.overrides)
        result = train(cfg, args.out, resume=args.resume)
        print(
            json.dumps(
                {
                    "run_dir": str(result.run_dir),
                    "steps": result.steps,
                    "seconds": round(result.seconds, 1),
                    "eval": result.last_eval,
                }
            )
        )
        return 0
    if args.command == "eval":
        if args.stage == "planner":
            from hiertok.eval_planner import evaluate_planner_run

            result = evaluate_planner_run(
                args.ckpt,
                args.data,
                args.max_docs,
                args.prompts,
                args.beams,
                args.decode_candidates,
                args.baseline,
                args.decode_passes,
                args.tokenizer,
                parse_device(args.device),
                args.context_frames,
                args.rollout_frames,
                args.goal_steps,
            )
        elif args.stage == "codelength":
            from hiertok.codelength import evaluate_codelength_run

            result = evaluate_codelength_run(
                args.ckpt, args.baseline, args.data, args.max_docs, args.tokenizer, parse_device(args.device)
            )
        else:
            from hiertok.evaluate import evaluate_run

            result = evaluate_run(args.ckpt, args.data, args.max_docs, parse_device(args.device))
        text = json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
        if args.out:
            from hiertok.atomic import atomic_write_text

            out = Path(args.out)
            if out.exists() and not out.is_file():  # /dev/null, /dev/stdout, a FIFO: written as they are
                out.write_text(text + "\n", encoding="utf-8")
            else:
                out.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(out, text + "\n")
        print(text)
        return 0
    from hiertok.cli_io import check_output, encode_stream, input_name, parse_codes_line, read_lines
    from hiertok.cli_video import check_modality, decode_videos, encode_videos
    from hiertok.tokenizer import IdeaTokenizer

    tok = IdeaTokenizer.from_pretrained(args.ckpt, device=parse_device(args.device))
    if args.command == "encode":
        check_modality(tok, args.file)
        if tok.is_video:
            encode_videos(tok, args.file)
        else:
            encode_stream(tok, args.file)
        return 0
    if args.out is not None and not tok.is_video:
        raise UserError("--out writes the frames of a video run; a text run's decoding goes to stdout")
    check_output(args.out)
    from hiertok.codes import Codes

    records = [parse_codes_line(line, n) for n, line in enumerate(read_lines(args.file), 1) if line.strip()]
    if not records:
        raise UserError(f"no codes to decode in {input_name(args.file)}")
    codes = Codes.from_lists(records, tok.codebook_sizes)
    if tok.is_video:
        frames = decode_videos(tok, codes, args.levels, args.passes, args.out)
        print(f"{len(frames)} videos of {frames.shape[1]} frames -> {args.out}", file=sys.stderr)
        return 0
    for text in tok.decode(codes, levels=args.levels, passes=args.passes):
        print(json.dumps({"text": text}, ensure_ascii=False) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
