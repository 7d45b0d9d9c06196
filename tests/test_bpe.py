"""Tests for hiertok.data.bpe: byte-level BPE round trips, specials, save/load, errors."""

from pathlib import Path

import pytest

from hiertok.data.bpe import BPE

CORPUS = [
    "one day, a little girl named lily found a needle in her room.",
    "she knew it was difficult to play with it because it was sharp.",
    'lily went to her mom and said, "mom, i found this needle."',
    "The cat sat on the mat. The dog sat on the log.",
    "Hello world! 你好，世界。 مرحبا بالعالم 😀",
] * 20

HOSTILE = [
    "",
    "hello world",
    "😀👍🏽👩‍👩‍👧‍👦 🏳️‍🌈 👩🏽‍💻",  # emoji, skin tones, ZWJ sequences
    "漢字かなカナ한국어",  # CJK
    "مرحبا بالعالم שלום עולם",  # right-to-left
    "e\u0301 n\u0303 a\u0300\u0301\u0302 Z\u0351\u0352\u0353",  # combining marks (not normalized)
    "".join(chr(c) for c in range(0x20)) + "\x7f",  # control characters
    "tab\there\nnewline\r\ncrlf\r",
    "   leading",
    "trailing   ",
    "multiple     spaces  inside",
    " ",
    "\n\n\n",
    "<pad>",
    "<bos>hello<eos>",
    "<pad><bos><eos>",
    "\ufeffBOM and \u200b zero width \u2028 line sep",
    "\U0010ffff\ue000 private use",
    "ﬁ ligature Ⅻ ① ＡＢＣ",  # compatibility chars: no normalizer must leave them alone
]


@pytest.fixture(scope="module")
def bpe() -> BPE:
    return BPE.train(CORPUS, vocab_size=400)


def test_special_ids(bpe: BPE) -> None:
    assert (bpe.pad_id, bpe.bos_id, bpe.eos_id) == (0, 1, 2)
    assert 259 <= bpe.vocab_size <= 400


@pytest.mark.parametrize("text", HOSTILE)
def test_round_trip(bpe: BPE, text: str) -> None:
    ids = bpe.encode(text)
    assert bpe.decode(ids) == text


def test_special_strings_in_text_are_not_specials(bpe: BPE) -> None:
    for text in ["<pad>", "<bos>", "<eos>", "a<bos>b"]:
        ids = bpe.encode(text)
        assert not {0, 1, 2} & set(ids), text
        assert bpe.decode(ids) == text


def test_no_bos_eos_added_and_specials_dropped(bpe: BPE) -> None:
    ids = bpe.encode("hello")
    assert ids and ids[0] != bpe.bos_id and ids[-1] != bpe.eos_id
    assert bpe.decode([bpe.bos_id, *ids, bpe.eos_id, bpe.pad_id]) == "hello"


def test_batch_matches_single(bpe: BPE) -> None:
    batch = bpe.encode_batch(HOSTILE)
    assert batch == [bpe.encode(t) for t in HOSTILE]
    assert bpe.decode_batch(batch) == HOSTILE


def test_lone_surrogate_is_a_clear_error(bpe: BPE) -> None:
    with pytest.raises(ValueError, match="surrogate"):
        bpe.encode("ok \ud800")
    with pytest.raises(ValueError, match="surrogate"):
        bpe.encode_batch(["fine", "bad \udfff"])


def test_save_load_same_encodings(bpe: BPE, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "tokenizer.json"
    bpe.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["tokenizer.json"]  # no temp file left
    loaded = BPE.load(path)
    assert loaded.vocab_size == bpe.vocab_size
    for text in HOSTILE:
        assert loaded.encode(text) == bpe.encode(text)
    # The "special strings are plain text" setting is not stored in the file: check it survives.
    assert loaded.encode("<pad>") != [0]


def test_str_round_trip(bpe: BPE) -> None:
    again = BPE.from_str(bpe.to_str())
    assert again.to_str() == bpe.to_str()
    assert again.encode("<bos>hi") == bpe.encode("<bos>hi")


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ValueError, match="nope.json"):
        BPE.load(path)


@pytest.mark.parametrize("content", ["{not json", "{}", '{"version": "1.0"}', ""])
def test_load_corrupt_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="tokenizer.json"):
        BPE.load(path)


def test_load_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.json"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ValueError, match="garbage.json"):
        BPE.load(path)


def test_train_errors() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        BPE.train(CORPUS, vocab_size=258)
    with pytest.raises(ValueError, match="no non-empty"):
        BPE.train([], vocab_size=300)
    with pytest.raises(ValueError, match="no non-empty"):
        BPE.train(iter(["", ""]), vocab_size=300)


def test_train_from_generator_learns_merges() -> None:
    bpe = BPE.train((t for t in CORPUS), vocab_size=300)
    assert bpe.vocab_size == 300
    assert len(bpe.encode("the cat sat on the mat")) < len("the cat sat on the mat")
