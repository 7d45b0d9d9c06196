"""Documents -> ideas: lossless sentence splitting, plus fixed-length token chunks.

``split_sentences`` lets pysbd decide *where* sentences end, but computes the cut
offsets itself: pysbd drops leading whitespace, and its returned strings (and
``char_span`` offsets) are not always substrings of the input, so joining them back
does not reliably reproduce the text. We only ever cut the original string, so
``"".join(split_sentences(t)) == t`` holds by construction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import pysbd

from hiertok.errors import UserError

# Text normalisation, before anything else reads a document: a byte-order mark (U+FEFF, at the start of a file or
# anywhere) and NUL characters are dropped, and Windows (CRLF) and old Mac (CR) line ends become "\n". Nothing
# else changes: other control characters, tabs and any Unicode text are kept as given.
_NORMALIZE = re.compile("\ufeff|\x00|\r\n?")


def normalize_text(text: str) -> str:
    """`text` without BOMs and NULs, with CRLF and CR line ends as "\n" (README: "Encode and decode")."""
    return _NORMALIZE.sub(lambda m: "\n" if m.group().startswith("\r") else "", text)


# pysbd rewrites these characters internally as placeholders (for periods, "?!", list
# markers, ...) and maps some of them back to *other* characters, so input that already
# contains them comes back mangled or even with text missing. We hide them from pysbd
# behind a neutral same-length character, which keeps every offset valid.
_PYSBD_PLACEHOLDERS = "∯∮ȸȹ♨☝✂⌬ᓰᓱᓳᓴᓷᓸ⎋☉☈☇☄♬♭☏ƪ♟♝"
_SANITIZE = str.maketrans({c: "#" for c in _PYSBD_PLACEHOLDERS})

# pysbd treats "!" before a lowercase word as mid-sentence ("it ran! she ..." stays one
# sentence). That is right for cased text but wrong for lowercased corpora such as
# TinyStories, so in a chunk with no uppercase letter we show pysbd that word capitalized.
_BANG_THEN_LOWER = re.compile(r"(?<=!)\s+[a-z]")
# A run of whitespace that contains a newline: a hard boundary, decided without pysbd.
_NEWLINE_RUN = re.compile(r"\s*\n\s*")
# pysbd only ever splits at these characters (terminal punctuation, quotes/brackets that
# close a sentence, and "\r", which it treats as a line break); a chunk without any of
# them is one sentence, so we skip pysbd for it (a big win on long unpunctuated text).
_MAY_SPLIT = re.compile(r"[.!?。．！？()（）「」\"'“”\r]")
# The last "non-space then space" in a window: where a whitespace run starts.
_LAST_RUN_START = re.compile(r".*\S(?=\s)", re.DOTALL)
# pysbd is superlinear on long inputs, so very long lines go to it in windows of about
# this size; a window edge is a forced cut, which the length cap would make anyway.
_PYSBD_WINDOW = 4000


# Fast path: pysbd costs ~0.25 ms per sentence, which dominates corpus preparation. A line whose only
# candidate boundaries are "[.!?] + space" after an ordinary word (no quotes, brackets, ellipses, digits,
# abbreviations from pysbd's own list, or lowercase continuations in cased text) has nothing for pysbd to
# disambiguate: we split it with a regex and agree with pysbd there (checked in tests on both corpora).
_HARD = re.compile(r"[\"“”‘()\[\]{}\r]|(?<![A-Za-z])'|'(?![A-Za-z])|[.!?][^\s.!?]|\.\.|\d[.!?]|[.!?]{2}")
_CANDIDATE = re.compile(r"(\S*)[.!?]\s+(\S)")
_EASY_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


@lru_cache(maxsize=1)
def _abbreviations() -> frozenset[str]:
    from pysbd.lang.english import English

    return frozenset(a.lower() for a in English.Abbreviation.ABBREVIATIONS)


def _fast_starts(line: str) -> list[int] | None:
    """Sentence starts of an easy line (see above), or None when pysbd must decide."""
    if _HARD.search(line):
        return None
    cased = line != line.lower()
    abbreviations = _abbreviations()
    for m in _CANDIDATE.finditer(line):
        word = m.group(1).lower()
        if len(word) == 1 or word in abbreviations or (cased and m.group(2).islower()):
            return None
    return [m.end() for m in _EASY_END.finditer(line)]


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    # Built once: construction is cheap but not free, and it is stateless between calls.
    return pysbd.Segmenter(language="en", clean=False, char_span=False)


def _last_ws_run_start(text: str, start: int, end: int) -> int:
    """Index of the last whitespace run that begins in ``(start, end]``, or -1.

    A "run start" is a whitespace char whose previous char is not whitespace, so cutting
    there keeps the whole run at the start of the next piece.
    """
    match = _LAST_RUN_START.match(text, start, end + 1)
    return match.end() if match else -1


def _cap_cuts(text: str, start: int, end: int, max_chars: int) -> list[int]:
    """Extra cut offsets so that every piece of ``text[start:end]`` has <= max_chars chars."""
    cuts = []
    while end - start > max_chars:
        cut = _last_ws_run_start(text, start, start + max_chars)
        if cut == -1:
            cut = start + max_chars  # no whitespace to break at: hard cut
        cuts.append(cut)
        start = cut
    return cuts


def _sentence_starts(line: str) -> list[int]:
    """Offsets (within ``line``) where pysbd says a new sentence begins, excluding 0.

    ``line`` has no newline and no leading/trailing whitespace. We locate each
    sentence pysbd returns in the same-length copy of the line we gave it, searching
    forward from the end of the previous one; a sentence that cannot be found (pysbd
    altered it) just merges into its predecessor, so the output stays lossless.
    """
    if not _MAY_SPLIT.search(line):
        return []
    fast = _fast_starts(line)
    if fast is not None:
        return fast
    clean = line.translate(_SANITIZE)
    if clean == clean.lower():
        # Same-length edit (one ASCII letter), so offsets still match ``line``.
        clean = _BANG_THEN_LOWER.sub(lambda m: m.group()[:-1] + m.group()[-1].upper(), clean)
    starts: list[int] = []
    pos = 0
    for sent in _segmenter().segment(clean):
        sent = sent.strip()
        if not sent:
            continue
        found = clean.find(sent, pos)
        if found == -1:
            continue
        if found > 0:
            starts.append(found)
        pos = found + len(sent)
    return starts


def _line_cuts(line: str) -> list[int]:
    """Sentence start offsets (excluding 0) within one stripped line.

    Long lines go to pysbd in windows; each window start counts as a sentence start.
    """
    cuts: list[int] = []
    start = 0
    while start < len(line):
        end = len(line)
        if end - start > _PYSBD_WINDOW:
            window_end = _last_ws_run_start(line, start, start + _PYSBD_WINDOW)
            end = window_end if window_end != -1 else start + _PYSBD_WINDOW
        chunk = line[start:end]
        # A window after the first begins with the whitespace we broke at: skip it.
        head = start + len(chunk) - len(chunk.lstrip())
        if head > 0:
            cuts.append(head)
        cuts.extend(head + c for c in _sentence_starts(chunk.strip()))
        start = end
    return cuts


def split_sentences(text: str, max_chars: int = 400) -> list[str]:
    """Split a document into sentences, losslessly.

    Newlines are hard boundaries; inside a line pysbd decides the boundaries.
    Whitespace between sentences goes to the start of the following sentence (GPT-style
    leading space); the document's leading/trailing whitespace stays on the first/last
    sentence. Any sentence longer than ``max_chars`` is split further at the last
    whitespace before the cap (or hard at the cap when there is none).

    Args:
        text: The document.
        max_chars: Maximum length in characters of a returned piece (>= 1).

    Returns:
        The sentences, with ``"".join(result) == text``; ``[]`` if ``text`` is empty or
        whitespace-only.

    Raises:
        UserError: If ``max_chars < 1``.
    """
    if max_chars < 1:
        raise UserError(f"max_chars must be >= 1, got {max_chars}")
    if not text or text.isspace():
        return []

    # Offsets of the first non-space character of every sentence, in order.
    heads: list[int] = []
    pos = 0
    for sep in [*_NEWLINE_RUN.finditer(text), None]:
        line = text[pos : sep.start() if sep else len(text)]
        stripped = line.strip()
        if stripped:
            head = pos + len(line) - len(line.lstrip())
            heads.append(head)
            heads.extend(head + c for c in _line_cuts(stripped))
        if sep:
            pos = sep.end()

    # Cut before the whitespace that precedes each head, so it leads the next sentence.
    cuts = [0]
    for head in heads[1:]:
        while text[head - 1].isspace():
            head -= 1
        cuts.append(head)
    cuts.append(len(text))

    pieces = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        for c in [*_cap_cuts(text, a, b, max_chars), b]:
            pieces.append(text[a:c])
            a = c
    return pieces


def chunk_ids(ids: Sequence[int], size: int) -> list[list[int]]:
    """Cut a token sequence into fixed-length chunks (the non-linguistic segmenter).

    Args:
        ids: Token ids of a document.
        size: Chunk length (>= 1); the last chunk may be shorter.

    Returns:
        The chunks, in order; ``[]`` for empty ``ids``.

    Raises:
        UserError: If ``size < 1``.
    """
    if size < 1:
        raise UserError(f"size must be >= 1, got {size}")
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]
