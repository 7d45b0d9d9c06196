"""Tests for hiertok.data.sources: local files, directories, streaming, errors, offline hub."""

import os

# Before datasets is imported: it reads these once, at import time.
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import gzip  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
from pathlib import Path  # noqa: E402

import datasets  # noqa: E402
import huggingface_hub  # noqa: E402
import pytest  # noqa: E402

from hiertok.data.sources import is_synthetic, iter_documents  # noqa: E402

datasets.disable_progress_bars()

DOCS = ["First doc.\nIts second line.", "Second doc.", "Third, with unicode: 你好 😀.", "Fourth."]


def write_txt(path: Path, docs: list[str]) -> Path:
    path.write_text("\n\n".join(docs) + "\n")
    return path


def write_jsonl(path: Path, docs: list[str | None], **extra_columns: list) -> Path:
    with open(path, "w") as f:
        for i, doc in enumerate(docs):
            row = {"text": doc, **{k: v[i] for k, v in extra_columns.items()}}
            f.write(json.dumps(row) + "\n")
    return path


@pytest.fixture(params=[False, True], ids=["eager", "streaming"])
def streaming(request: pytest.FixtureRequest) -> bool:
    return request.param


def test_txt_paragraphs(tmp_path: Path, streaming: bool) -> None:
    path = write_txt(tmp_path / "a.txt", DOCS)
    docs = list(iter_documents(str(path), streaming=streaming))
    # datasets keeps the file's final newline on the last paragraph.
    assert [d.rstrip("\n") for d in docs] == DOCS


def test_txt_blank_paragraphs_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("one\n\n\n\n   \n\ntwo\n")
    assert [d.strip() for d in iter_documents(str(path))] == ["one", "two"]


def test_jsonl_skips_none_and_blank(tmp_path: Path, streaming: bool) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", ["x", None, "  \n", "y"])
    assert list(iter_documents(str(path), streaming=streaming)) == ["x", "y"]


def test_jsonl_gz_and_other_column(tmp_path: Path, streaming: bool) -> None:
    path = tmp_path / "a.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for doc in DOCS:
            f.write(json.dumps({"body": doc}) + "\n")
    assert list(iter_documents(str(path), text_column="body", streaming=streaming)) == DOCS


def test_parquet(tmp_path: Path, streaming: bool) -> None:
    path = tmp_path / "a.parquet"
    datasets.Dataset.from_dict({"text": [*DOCS, None], "n": [0, 1, 2, 3, 4]}).to_parquet(path)
    assert list(iter_documents(str(path), streaming=streaming)) == DOCS


def test_directory_in_sorted_order(tmp_path: Path, streaming: bool) -> None:
    write_jsonl(tmp_path / "b.jsonl", DOCS[2:])
    write_jsonl(tmp_path / "a.jsonl", DOCS[:2])
    (tmp_path / "notes.md").write_text("ignored")
    (tmp_path / ".hidden").mkdir()
    write_jsonl(tmp_path / ".hidden" / "c.jsonl", ["ignored"])
    assert list(iter_documents(str(tmp_path), streaming=streaming)) == DOCS


def test_streaming_is_an_iterable_dataset_with_same_docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = []
    real_load = datasets.load_dataset

    def spy(*args, **kwargs):
        loaded.append(real_load(*args, **kwargs))
        return loaded[-1]

    monkeypatch.setattr(datasets, "load_dataset", spy)
    path = write_jsonl(tmp_path / "a.jsonl", DOCS * 5)
    assert list(iter_documents(str(path), streaming=True)) == list(iter_documents(str(path)))
    assert [type(ds) for ds in loaded] == [datasets.IterableDataset, datasets.Dataset]


@pytest.mark.parametrize(("skip", "limit", "expected"), [(0, 2, DOCS[:2]), (2, None, DOCS[2:]), (1, 2, DOCS[1:3])])
def test_skip_and_limit(tmp_path: Path, streaming: bool, skip: int, limit: int | None, expected: list) -> None:
    # A blank row in front: skip/limit count documents, not rows.
    path = write_jsonl(tmp_path / "a.jsonl", [" ", *DOCS])
    assert list(iter_documents(str(path), skip=skip, limit=limit, streaming=streaming)) == expected


def test_held_out_split_is_disjoint_and_complete(tmp_path: Path) -> None:
    path = str(write_jsonl(tmp_path / "a.jsonl", DOCS))
    held_out = list(iter_documents(path, limit=1))
    train = list(iter_documents(path, skip=1))
    assert held_out + train == DOCS


def test_missing_file(tmp_path: Path) -> None:
    for missing in [tmp_path / "nope.jsonl", tmp_path / "nope"]:
        with pytest.raises(FileNotFoundError, match="no such file.*nope"):
            iter_documents(str(missing))
    with pytest.raises(FileNotFoundError, match="no such file"):
        iter_documents("stories.txt")


def test_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no data files"):
        iter_documents(str(tmp_path))


def test_bad_extension(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("text\nhello\n")
    with pytest.raises(ValueError, match=r"unsupported file type.*a\.csv"):
        iter_documents(str(path))


def test_mixed_directory(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", DOCS)
    write_txt(tmp_path / "b.txt", DOCS)
    with pytest.raises(ValueError, match="mixes file types"):
        iter_documents(str(tmp_path))


def test_missing_column_lists_columns(tmp_path: Path, streaming: bool) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", DOCS, title=["t"] * len(DOCS))
    with pytest.raises(ValueError, match=r"no column 'body'.*\['text', 'title'\]"):
        list(iter_documents(str(path), text_column="body", streaming=streaming))


def test_non_text_column(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", DOCS, n=list(range(len(DOCS))))
    with pytest.raises(ValueError, match="'n'.*int"):
        list(iter_documents(str(path), text_column="n"))


def test_corrupt_json_is_one_clear_line(tmp_path: Path, streaming: bool) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{not json\n')
    with pytest.raises(ValueError, match="bad.jsonl") as info:
        list(iter_documents(str(path), streaming=streaming))
    assert "\n" not in str(info.value)


def test_synthetic_is_not_loaded_here() -> None:
    assert is_synthetic("synthetic")
    assert not is_synthetic("roneneldan/TinyStories")
    with pytest.raises(ValueError, match="synthetic"):
        iter_documents("synthetic")


def test_bad_skip_limit(tmp_path: Path) -> None:
    path = str(write_jsonl(tmp_path / "a.jsonl", DOCS))
    with pytest.raises(ValueError, match="skip"):
        iter_documents(path, skip=-1)
    with pytest.raises(ValueError, match="limit"):
        iter_documents(path, limit=-1)


@pytest.mark.timeout(120)  # generous: a network wait would hang far longer
@pytest.mark.parametrize("streaming_hub", [False, True])
def test_hub_name_offline_fails_fast(monkeypatch: pytest.MonkeyPatch, streaming_hub: bool) -> None:
    # Also patch the already-imported flags, in case datasets was imported before this module.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    attempts = []  # offline means no connection is even tried (fast whatever the machine's load)

    def no_network(sock, address, *args):
        attempts.append(address)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    with pytest.raises(ValueError, match="'hiertok-test/no-such-dataset' is not a local path.*cannot be reached"):
        iter_documents("hiertok-test/no-such-dataset", streaming=streaming_hub)
    assert attempts == []
