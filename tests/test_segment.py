"""Tests for hiertok.data.segment: lossless sentence splitting and token chunks."""

import random

import pytest

from hiertok.data.segment import chunk_ids, split_sentences

from .timing import growth

TRICKY = [
    "Mr. Smith went to Washington. He met Dr. Jones at 3 p.m. on Friday.",
    "We use e.g. apples and i.e. pears. The U.S. is big.",
    'He said, "Go home." Then he left.',
    "“Curly quotes.” And 'single ones.' Done.",
    "Wait... what? Really?! Yes!!! No?",
    "Pi is 3.14 and e is 2.718. Version 1.2.3 is out.",
    "line one\nline two. Still two.\n\nthree",
    " = Title = \n The cat sat . It ran . \n",
    "windows\r\nline endings.\r\nok\r\n",
    "  leading and trailing whitespace.  Two  spaces.   ",
    "Emoji 😀 here. 👩🏽‍💻 works too! Done.",
    "中文句子。第二句！第三句？ English after.",
    "text without final punctuation",
    "tabs\tand\x0bvertical tabs. and a lone\rcarriage return.",
    "Placeholders pysbd uses: ∯ ȸ ♨ ☉ ♬ ♭. They must survive.",
    "1. first item 2. second item a) third b) fourth",
    "...",
    "!",
    "a",
]


@pytest.mark.parametrize("text", TRICKY)
def test_lossless_round_trip(text: str) -> None:
    pieces = split_sentences(text)
    assert "".join(pieces) == text
    assert all(pieces)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A b. C d.", ["A b.", " C d."]),
        ("Mr. Smith went to Washington.", ["Mr. Smith went to Washington."]),
        ('He said, "Go home." Then he left.', ['He said, "Go home."', " Then he left."]),
        ("one day, lily went out. she saw a dog.", ["one day, lily went out.", " she saw a dog."]),
        ("it was fun! she smiled.", ["it was fun!", " she smiled."]),
        ("Pi is 3.14 exactly. Next.", ["Pi is 3.14 exactly.", " Next."]),
        ("Is it? Yes! Ok.", ["Is it?", " Yes!", " Ok."]),
        ("The U.S. is big. We know.", ["The U.S. is big.", " We know."]),
        ("first line\nsecond line", ["first line", "\nsecond line"]),
        ("  Lead. Trail.  ", ["  Lead.", " Trail.  "]),
        (" = Title = \n The cat . \n", [" = Title =", " \n The cat . \n"]),
        ("Hello. \n\nWorld.", ["Hello.", " \n\nWorld."]),
    ],
)
def test_expected_splits(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_cased_exclamation_before_lowercase_is_not_a_boundary() -> None:
    # In cased text a lowercase word after "!" continues the sentence (pysbd's rule).
    assert split_sentences("She shouted Hey! and left.") == ["She shouted Hey! and left."]


@pytest.mark.parametrize("text", ["", "  \n ", "\t", "\r\n"])
def test_empty_or_whitespace_gives_nothing(text: str) -> None:
    assert split_sentences(text) == []


@pytest.mark.parametrize("unit", ["a", "word "])
def test_length_cap_on_one_megabyte_is_lossless_and_linear(unit: str) -> None:
    text = unit * (1_000_000 // len(unit))
    pieces = split_sentences(text, max_chars=400)
    assert "".join(pieces) == text
    assert max(len(p) for p in pieces) <= 400
    # 4x the text takes about 4x the time; quadratic splitting would take 16x.
    ratio = growth(lambda n: split_sentences(unit * n, max_chars=400), 250_000 // len(unit), 1_000_000 // len(unit))
    assert ratio < 8, f"4x the text took {ratio:.1f}x the time"


def test_length_cap_breaks_at_whitespace() -> None:
    text = "aaaa bbbb cccc dddd"
    pieces = split_sentences(text, max_chars=10)
    assert pieces == ["aaaa bbbb", " cccc dddd"]
    assert split_sentences("abcdefgh", max_chars=3) == ["abc", "def", "gh"]


@pytest.mark.parametrize("max_chars", [1, 2, 7])
@pytest.mark.parametrize("text", TRICKY)
def test_length_cap_is_lossless(text: str, max_chars: int) -> None:
    pieces = split_sentences(text, max_chars=max_chars)
    assert "".join(pieces) == text
    assert all(0 < len(p) <= max_chars for p in pieces)


def test_random_texts_are_lossless_and_capped() -> None:
    # Random mixes of the characters that matter to the splitter, incl. pysbd's placeholders.
    rng = random.Random(0)
    alphabet = list("abc ABC  ..!?\"'()\n\r\t 1 2 你。😀∯ȸ♨☉\u00a0")
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        max_chars = rng.choice([1, 3, 400])
        pieces = split_sentences(text, max_chars=max_chars)
        if text.strip() == "":
            assert pieces == []
        else:
            assert "".join(pieces) == text
            assert all(0 < len(p) <= max_chars for p in pieces)


def test_bad_max_chars() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        split_sentences("Hi.", max_chars=0)


def test_chunk_ids() -> None:
    assert chunk_ids([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert chunk_ids([1, 2, 3, 4], 2) == [[1, 2], [3, 4]]
    assert chunk_ids([1, 2], 5) == [[1, 2]]
    assert chunk_ids([], 3) == []
    assert chunk_ids(range(3), 1) == [[0], [1], [2]]


@pytest.mark.parametrize("size", [0, -1])
def test_chunk_ids_bad_size(size: int) -> None:
    with pytest.raises(ValueError, match="size"):
        chunk_ids([1, 2], size)
