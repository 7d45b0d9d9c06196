"""Property-based tests (hypothesis) of everything that claims to be lossless or to round-trip: sentence
segmentation, BPE, ideas joined back into a document, the codes JSONL that `encode` writes and `decode`
reads, and config overrides."""

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hiertok.cli_io import parse_codes_line
from hiertok.config import load_config
from hiertok.data.ideas import join_ideas, segment_document
from hiertok.data.segment import normalize_text, split_sentences
from hiertok.tokenizer import IdeaTokenizer, TokenizerConfig

# No per-example deadline: a busy 2-core machine would make timing flaky; examples derandomized so that a
# failure reproduces from the test run alone.
PROPS = settings(
    deadline=None, max_examples=200, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Arbitrary Unicode text (no lone surrogates: they are not encodable as UTF-8, and input is read as UTF-8),
# weighted towards what segmentation and BPE find hard: whitespace runs, tabs, newlines, sentence ends.
TRICKY = st.sampled_from(list(" \t\n\r\x0b\x0c.!?…。\"'“”()…-") + ["...", "Mr.", "e.g.", "\r\n", "  ", "😀", "👩🏽‍💻"])
TEXT = st.lists(st.one_of(st.characters(exclude_categories=("Cs",)), TRICKY), max_size=80).map("".join)


@PROPS
@given(text=TEXT, max_chars=st.integers(min_value=1, max_value=400))
def test_sentence_splitting_is_lossless_on_any_text(text, max_chars):
    """Lossless, non-empty pieces of at most max_chars; a whitespace-only text has no sentence (documented)."""
    pieces = split_sentences(text, max_chars=max_chars)
    assert "".join(pieces) == ("" if text.isspace() else text)
    assert all(0 < len(p) <= max_chars for p in pieces)


@pytest.fixture(scope="module")
def toy_tokenizer(toy_run):
    return IdeaTokenizer.from_pretrained(toy_run)


@PROPS
@given(text=TEXT)
def test_bpe_round_trips_any_text(toy_tokenizer, text):
    bpe = toy_tokenizer.bpe
    assert bpe.decode(bpe.encode(text)) == text


@PROPS
@given(text=TEXT, lead_space=st.booleans(), segmenter=st.sampled_from(["sentence", "chunk"]))
def test_ideas_join_back_into_the_document(toy_tokenizer, text, lead_space, segmenter):
    """split -> join is the identity, by sentences or token chunks, with and without the leading space of a
    document's first idea; every idea is within the token limit."""
    seg = dataclasses.replace(toy_tokenizer.segmentation, lead_space=lead_space, segmenter=segmenter, chunk_size=5)
    bpe = toy_tokenizer.bpe
    ideas = segment_document(text, bpe, seg)
    clean = normalize_text(text)  # no BOM or NUL, "\n" line ends
    assert join_ideas(bpe, seg, ideas) == (clean if clean.strip() else "")  # whitespace only: no ideas
    assert all(0 < len(i) <= seg.max_idea_tokens for i in ideas)


CODES = st.lists(st.lists(st.integers(min_value=0, max_value=2**31 - 1), min_size=1, max_size=16), max_size=20)


@PROPS
@given(codes=CODES, wrapped=st.booleans())
def test_codes_jsonl_reads_back_what_was_written(codes, wrapped):
    """The line `encode` writes ({"codes": ...}, or a bare list) parses back to the same codes."""
    line = json.dumps({"codes": codes} if wrapped else codes)
    assert parse_codes_line(line, 1) == codes


@PROPS
@given(
    lr=st.floats(min_value=1e-8, max_value=10.0, allow_nan=False),
    steps=st.integers(min_value=1, max_value=10**7),
    dropout=st.floats(min_value=0.0, max_value=1.0),
    lead_space=st.booleans(),
    source=st.text(alphabet=st.characters(categories=("L", "N"), include_characters="/._-"), min_size=1),
)
def test_config_overrides_set_exactly_the_value_given(lr, steps, dropout, lead_space, source):
    cfg = load_config(
        TokenizerConfig,
        None,
        [
            f"train.lr={lr!r}",
            f"train.max_steps={steps}",
            f"model.quantizer.level_dropout={dropout!r}",
            f"data.lead_space={str(lead_space).lower()}",
            f"data.source='{source}'",
        ],
    )
    assert cfg.train.lr == lr and cfg.train.max_steps == steps
    assert cfg.model.quantizer.level_dropout == dropout and cfg.data.lead_space is lead_space
    assert cfg.data.source == source
    default = TokenizerConfig()
    assert cfg.train.batch_size == default.train.batch_size  # an override touches only its key
