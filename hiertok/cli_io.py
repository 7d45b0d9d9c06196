"""What the CLI reads and writes: flag values, input files or standard input line by line, documents (text or JSONL),
code records, and `encode` streamed in bounded batches.

Input rules (README: "Encode and decode"):
- FILE is a path (a regular file, a FIFO, /dev/stdin), or `-` / nothing for standard input; a directory is refused.
- Bytes must be UTF-8; a byte-order mark at the start of a line is dropped, a line may end in "\\n" or "\\r\\n".
- Documents: if the first non-blank line is a JSON object, the input is JSONL and every non-blank line must be an
  object with a string "text"; otherwise every line is one document. Blank lines are empty documents.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from hiertok.checks import MAX_BEAMS, MAX_IDEAS, MAX_SAMPLES, MAX_SEED, check_int, check_mass, check_temperature
from hiertok.data.segment import normalize_text
from hiertok.errors import UserError

if TYPE_CHECKING:
    from hiertok.tokenizer import IdeaTokenizer

# Documents encoded together: memory stays bounded by one batch, whatever the input's length.
ENCODE_BATCH_DOCS = 256


# Every integer flag: its argparse name and its range. A value out of range is an error whether or not the
# command would use it (`--top-k -1` without `--sample` too).
INT_FLAGS: dict[str, tuple[int, int | None]] = {
    "sentences": (1, MAX_IDEAS),
    "beams": (1, MAX_BEAMS),
    "diverse_groups": (1, MAX_BEAMS),
    "top_k": (0, None),
    "num_samples": (1, MAX_SAMPLES),
    "seed": (0, MAX_SEED),
    "decode_candidates": (1, MAX_SAMPLES),
    "decode_passes": (0, None),
    "passes": (0, None),
    "levels": (1, None),
    "max_docs": (1, None),
    "prompts": (0, None),
    "stories": (1, None),
}


def check_flags(args: argparse.Namespace) -> None:
    """UserError naming the flag for any given numeric flag out of range (`INT_FLAGS`, --temperature, --top-p)."""
    for name, (low, high) in INT_FLAGS.items():
        value = getattr(args, name, None)
        if value is not None:
            check_int("--" + name.replace("_", "-"), value, low, high)
    if getattr(args, "temperature", None) is not None:
        check_temperature("--temperature", args.temperature)
    if getattr(args, "top_p", None) is not None:
        check_mass("--top-p", args.top_p)


def check_output(out: str | None) -> None:
    """Fail before the work, not after it, when `--out` cannot be written: a directory, or an unwritable place."""
    if out is None:
        return
    path = Path(out)
    if path.is_dir():
        raise UserError(f"--out {out} is a directory: give a file path")
    if path.exists() and not path.is_file():  # a device or a FIFO is written in place
        if not os.access(path, os.W_OK):
            raise UserError(f"--out {out}: cannot write there (not writable)")
        return
    parent = path.parent  # a file is replaced atomically: its directory must be writable
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UserError(f"--out {out}: cannot write there ({parent} is not a writable directory)")


def input_name(file: str | None) -> str:
    return "standard input" if file in (None, "-") else file


def stdin_bytes() -> BinaryIO:
    """Standard input as bytes; UserError when it is closed (`<&-`)."""
    if sys.stdin is None or sys.stdin.closed:
        raise UserError("standard input is closed: give the input as an argument")
    if hasattr(sys.stdin, "buffer"):
        return sys.stdin.buffer
    return io.BytesIO(sys.stdin.read().encode("utf-8"))  # a text stream put in its place (an embedding program)


def read_text(file: str | None) -> str:
    """The whole of a file or of standard input (`-` or None), decoded as UTF-8 without a leading BOM."""
    return "".join(read_lines(file))


def read_lines(file: str | None) -> Iterator[str]:
    """Lines of a file or of standard input (`-` or None), decoded as UTF-8, as they are read.

    Raises:
        FileNotFoundError / UserError: no such file, a directory, bytes that are not UTF-8 (naming the line).
    """
    name = input_name(file)
    if file in (None, "-"):
        yield from _decoded(stdin_bytes(), name)
        return
    path = Path(file)
    if path.is_dir():
        raise UserError(f"{file} is a directory: give a file")
    if not path.exists():
        raise FileNotFoundError(f"no such file: {file}")
    with open(path, "rb") as f:
        yield from _decoded(f, name)


def _decoded(stream: BinaryIO, name: str) -> Iterator[str]:
    for n, raw in enumerate(stream, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"{name}: line {n} is not valid UTF-8 (byte {raw[e.start]:#04x})") from None
        yield line.removeprefix("\ufeff")  # at the start of a file, or of each file of `cat a b`


def read_documents(file: str | None) -> Iterator[str]:
    """Documents of an input: one per line, or JSONL with a string "text" per line (module docstring)."""
    jsonl = None  # decided by the first non-blank line
    for n, line in enumerate(read_lines(file), 1):
        line = line.removesuffix("\n").removesuffix("\r")
        if not line.strip():
            yield ""
            continue
        if jsonl is None:
            jsonl = _json_object(line) is not None
        if not jsonl:
            yield line
            continue
        obj = _json_object(line)
        if obj is None or not isinstance(obj.get("text"), str):
            got = "not a JSON object" if obj is None else _json_type(obj.get("text", _MISSING))
            raise UserError(f'{input_name(file)}: line {n}: JSONL input needs an object with a string "text" ({got})')
        yield obj["text"]


_MISSING = object()


def _json_type(value: object) -> str:
    """How a JSON value that should have been a string is named in a message."""
    if value is _MISSING:
        return 'no "text"'
    names = {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }
    return f'"text" is {names.get(type(value), type(value).__name__)}'


def _json_object(line: str) -> dict | None:
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def parse_codes_line(line: str, n: int) -> list[list[int]]:
    """One line of `decode` input: {"codes": [[...], ...]} (or the bare list); UserError naming the line."""
    try:
        obj = json.loads(line)
        codes = obj["codes"] if isinstance(obj, dict) else obj
        if not isinstance(codes, list) or not all(
            isinstance(i, list) and all(type(c) is int for c in i) for i in codes
        ):
            raise TypeError
    except (json.JSONDecodeError, KeyError, TypeError, RecursionError):
        raise UserError(f"line {n}: expected JSON with 'codes': a list of ideas, each a list of ints") from None
    if any(not idea for idea in codes):
        raise UserError(f"line {n}: an idea has no codes (each idea is a list of 1 or more levels)")
    if any(not 0 <= c < 2**31 for idea in codes for c in idea):
        raise UserError(f"line {n}: a code is out of range (codes are integers from 0 to a level's size - 1)")
    return codes


def encode_stream(tok: IdeaTokenizer, file: str | None) -> None:
    """`hiertok encode`: every document's codes as a JSON line, written as the input is read, in batches of
    ENCODE_BATCH_DOCS documents.

    Raises:
        UserError: the input has no text at all (nothing is written then).
    """
    sizes = tok.codebook_sizes
    pending: list[str] = []
    seen_text = False

    def flush() -> None:
        ideas = [tok.split(doc) for doc in pending]
        flat = tok.encode_ideas([i for doc in ideas for i in doc]).tolist()
        start = 0
        for doc in ideas:
            print(json.dumps({"codes": flat[start : start + len(doc)], "codebook_sizes": sizes}))
            start += len(doc)
        sys.stdout.flush()
        pending.clear()

    for doc in read_documents(file):
        pending.append(doc)
        seen_text = seen_text or bool(normalize_text(doc).strip())
        if seen_text and len(pending) >= ENCODE_BATCH_DOCS:  # blank lines before any text wait: see below
            flush()
    if not seen_text:
        raise UserError(f"no text to encode in {input_name(file)}")
    flush()
