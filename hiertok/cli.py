"""`hiertok` command line: parses arguments and calls library functions; errors are one line, exit 2.

hiertok demo
hiertok train tokenizer --config configs/tokenizer/tiny.yaml --out runs/tok [--resume] [key=value ...]
hiertok eval tokenizer --ckpt runs/tok --data synthetic --out tok.json
hiertok encode --ckpt runs/tok [FILE]        # documents (one per line, or JSONL {"text": ...}) -> JSONL codes
hiertok decode --ckpt runs/tok [FILE]        # JSONL codes -> text
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hiertok", description="Think in ideas before words: idea tokenizer, planner and decoder."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="offline: train a tiny tokenizer on the synthetic corpus, evaluate, show")
    demo.add_argument("--out", "-o", default="runs/demo", help="run directory (default: runs/demo)")
    demo.add_argument("overrides", nargs="*", help="config overrides key=value")

    train = sub.add_parser("train", help="train a stage")
    train_sub = train.add_subparsers(dest="stage", required=True, metavar="STAGE")
    tt = train_sub.add_parser("tokenizer", help="stage 1: the idea tokenizer")
    tt.add_argument("--config", "-c", help="YAML config (overrides of the defaults)")
    tt.add_argument("--out", "-o", required=True, help="run directory")
    tt.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    tt.add_argument("overrides", nargs="*", help="config overrides key=value, e.g. train.lr=3e-4")

    ev = sub.add_parser("eval", help="evaluate a trained stage")
    ev_sub = ev.add_subparsers(dest="stage", required=True, metavar="STAGE")
    et = ev_sub.add_parser("tokenizer", help="reconstruction per prefix, code usage, bits per byte")
    et.add_argument("--ckpt", required=True, help="tokenizer run directory")
    et.add_argument(
        "--data",
        default=None,
        help="'synthetic', a local file/directory or a hub dataset (default: the held-out part of the training source)",
    )
    et.add_argument(
        "--max-docs", type=int, default=None, help="documents to evaluate (default: the config's eval_docs)"
    )
    et.add_argument("--out", "-o", help="write the results as JSON here")

    enc = sub.add_parser("encode", help="documents -> idea codes (JSONL)")
    enc.add_argument("--ckpt", required=True, help="tokenizer run directory")
    enc.add_argument("file", nargs="?", help="input (default: stdin): one document per line, or JSONL with 'text'")

    dec = sub.add_parser("decode", help="idea codes (JSONL from encode) -> text")
    dec.add_argument("--ckpt", required=True, help="tokenizer run directory")
    dec.add_argument("file", nargs="?", help="input (default: stdin): JSONL lines with 'codes'")
    dec.add_argument("--levels", "-k", type=int, default=None, help="decode from the first k levels only")
    dec.add_argument("--json", action="store_true", help="print JSON lines {'text': ...}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hiertok` console script. Returns the process exit code."""
    args = build_parser().parse_args(argv)
    from hiertok.errors import USER_ERRORS  # imported late: `hiertok --help` stays fast

    try:
        return _dispatch(args)
    except USER_ERRORS as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"hiertok: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hiertok: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from hiertok.demo import run_demo

        run_demo(Path(args.out), args.overrides)
        return 0
    if args.command == "train":
        from hiertok.config import load_config
        from hiertok.tokenizer import TokenizerConfig
        from hiertok.train_tokenizer import train

        cfg = load_config(TokenizerConfig, args.config, args.overrides)
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
        from hiertok.evaluate import evaluate_run

        result = evaluate_run(args.ckpt, args.data, args.max_docs)
        text = json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(text)
        return 0
    from hiertok.tokenizer import IdeaTokenizer

    tok = IdeaTokenizer.from_pretrained(args.ckpt)
    if args.command == "encode":
        docs = list(_read_documents(args.file))
        codes = tok.encode(docs)
        for doc in codes.to_lists():
            print(json.dumps({"codes": doc, "codebook_sizes": codes.codebook_sizes}))
        return 0
    from hiertok.codes import Codes

    records = [_parse_codes_line(line, n) for n, line in enumerate(_read_lines(args.file), 1) if line.strip()]
    codes = Codes.from_lists(records, tok.codebook_sizes)
    for text in tok.decode(codes, levels=args.levels):
        print(json.dumps({"text": text}, ensure_ascii=False) if args.json else text)
    return 0


def _read_lines(file: str | None) -> Iterator[str]:
    if file is None:
        yield from sys.stdin
        return
    path = Path(file)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {file}")
    with open(path, encoding="utf-8", errors="strict") as f:
        yield from f


def _read_documents(file: str | None) -> Iterator[str]:
    """One document per line; a line that is a JSON object with a 'text' field gives that text."""
    for line in _read_lines(file):
        line = line.rstrip("\n")
        if line.startswith("{"):
            try:
                obj = json.loads(line)
                if isinstance(obj, dict) and isinstance(obj.get("text"), str):
                    yield obj["text"]
                    continue
            except json.JSONDecodeError:
                pass
        yield line


def _parse_codes_line(line: str, n: int) -> list[list[int]]:
    try:
        obj = json.loads(line)
        codes = obj["codes"] if isinstance(obj, dict) else obj
        if not isinstance(codes, list) or not all(isinstance(i, list) for i in codes):
            raise TypeError
        return codes
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ValueError(f"line {n}: expected JSON with 'codes': a list of ideas, each a list of ints") from None


if __name__ == "__main__":
    sys.exit(main())
