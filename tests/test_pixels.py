"""Frames as ideas: the pixel vocabulary, the video corpus, and `.npy` files read with one line for every bad array."""

import pickle

import numpy as np
import pytest

from hiertok.data.pixels import SPECIALS, PixelVocab, video_corpus
from hiertok.data.video import VideoWorld, VideoWorldConfig
from hiertok.data.video_files import read_videos, write_videos
from hiertok.errors import UserError

VOCAB = PixelVocab()


def test_frames_round_trip_through_their_token_ids():
    videos = VideoWorld().generate(3, seed=1)
    ids = VOCAB.encode(videos)
    assert ids.shape == (3, 20, 256) and ids.min() >= SPECIALS and ids.max() < VOCAB.vocab_size == 7
    assert ids[0, 0, 16 * 2 + 5] == videos[0, 0, 2, 5] + SPECIALS  # row-major: y = 2, x = 5
    for video, video_ids in zip(videos, ids):
        assert all(np.array_equal(VOCAB.decode(f.tolist()), frame) for f, frame in zip(video_ids, video))


def test_a_decoded_text_always_becomes_a_frame():
    frame = np.arange(256).reshape(16, 16) % 4
    ids = VOCAB.encode(frame).tolist()
    short = VOCAB.decode(ids[:100])  # the rest is background
    assert np.array_equal(short.reshape(-1)[:100], frame.reshape(-1)[:100]) and not short.reshape(-1)[100:].any()
    assert np.array_equal(VOCAB.decode([*ids, 5, 6]), frame)  # cut at a frame
    specials = VOCAB.decode([VOCAB.pad_id, VOCAB.bos_id, VOCAB.eos_id, 3 + 2])
    assert specials.reshape(-1)[:4].tolist() == [0, 0, 0, 2] and specials.dtype == np.uint8


def test_a_video_is_a_document_of_one_idea_per_frame():
    cfg = VideoWorldConfig(height=8, width=12, frames=5)
    videos = VideoWorld(cfg).generate(4, seed=2)
    vocab = PixelVocab(height=8, width=12)
    corpus = video_corpus(videos, vocab)
    assert (corpus.num_docs, corpus.num_ideas) == (4, 20)
    assert np.array_equal(corpus.idea(7), vocab.encode(videos[1, 2]))  # document 1, frame 2
    assert corpus.doc_of_ideas().tolist() == [d for d in range(4) for _ in range(5)]
    with pytest.raises(UserError, match="8 x 12"):
        video_corpus(videos, VOCAB)


def test_the_vocabulary_is_saved_and_loaded(tmp_path):
    vocab = PixelVocab(colours=3, height=4, width=6)
    vocab.save(tmp_path / "pixels.json")
    assert PixelVocab.load(tmp_path / "pixels.json") == vocab
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
    with pytest.raises(UserError, match="not a pixel vocabulary"):
        PixelVocab.load(tmp_path / "tokenizer.json")
    with pytest.raises(UserError, match="at least 2 colours"):
        PixelVocab(colours=1)


def test_videos_are_read_in_any_integer_dtype_and_written_back(tmp_path):
    videos = VideoWorld().generate(2, seed=3)
    write_videos(tmp_path / "v.npy", videos)
    assert np.array_equal(read_videos(tmp_path / "v.npy", VOCAB), videos)
    np.save(tmp_path / "one.npy", videos[0].astype(np.int64))  # one video, another integer dtype
    one = read_videos(tmp_path / "one.npy", VOCAB)
    assert one.shape == (1, 20, 16, 16) and one.dtype == np.uint8 and np.array_equal(one[0], videos[0])
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def _bad(tmp_path, name: str, content) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.save(path, content, allow_pickle=True)
    return str(path)


FRAME = np.zeros((20, 16, 16), dtype=np.uint8)
BAD = [
    ("empty.npy", b"", "empty"),
    ("v.txt", b"0 1 2", "'.txt' file"),
    ("text.npy", b"not an array at all", "not a .npy array"),
    ("objects.npy", np.array([FRAME, "x"], dtype=object), "pickled"),
    ("float.npy", FRAME.astype(np.float32), "dtype float32"),
    ("bool.npy", FRAME.astype(bool), "dtype bool"),
    ("above.npy", FRAME + 4, "0..3, got values 4..4"),
    ("negative.npy", FRAME.astype(np.int8) - 1, "got values -1..-1"),
    ("rank2.npy", FRAME[0], "got shape (16, 16)"),
    ("rank5.npy", FRAME[None, None], "got shape (1, 1, 20, 16, 16)"),
    ("size.npy", np.zeros((20, 8, 16), np.uint8), "8 x 16 pixels"),
    ("no_frames.npy", np.zeros((0, 16, 16), np.uint8), "no frames"),
    ("no_videos.npy", np.zeros((0, 20, 16, 16), np.uint8), "no frames"),
    ("missing.npy", None, "no such file"),
]


@pytest.mark.parametrize("name, content, words", BAD, ids=[b[0] for b in BAD])
def test_a_bad_array_is_one_line_that_names_the_file(tmp_path, name, content, words):
    path = _bad(tmp_path, name, content)
    with pytest.raises(UserError) as info:
        read_videos(path, VOCAB)
    message = str(info.value)
    assert "\n" not in message and message.startswith(path) and words in message, message


def test_a_pickle_renamed_npy_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "evil.npy"
    path.write_bytes(pickle.dumps({"not": "frames"}))
    with pytest.raises(UserError, match="not a .npy array|pickled"):
        read_videos(path, VOCAB)
