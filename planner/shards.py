"""A corpus encoded once by a frozen tokenizer: code shards on disk, reused by every planner run.

Layout of a shard directory (written to a temporary directory, then renamed into place):

    meta.json            tokenizer run path and content hash, levels, codebook sizes, segmenter, source
    shard_00000.npz      codes (n_ideas, L) int32 and doc_offsets (n_docs + 1,) int64, whole documents
    shard_00001.npz      ...

Shards live under the tokenizer run, `TOK_RUN/codes/<split>-<key>`, keyed by the tokenizer hash and the
data selection, so a second planner on the same data and tokenizer reuses them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiertok.config import DataConfig
from hiertok.data.corpus import Split, is_video
from hiertok.errors import UserError
from hiertok.tokenizer import CONFIG_FILE, WEIGHTS_FILE, IdeaTokenizer, vocabulary_file

META_FILE = "meta.json"


class TokenizerMismatchError(UserError):
    """Codes or a planner were made with a different tokenizer than the one given."""


def tokenizer_hash(tok_dir: str | Path) -> str:
    """Content hash of a saved tokenizer: its config, vocabulary (BPE, or a video run's pixels) and weights (sha256,
    16 hex digits)."""
    h = hashlib.sha256()
    for name in (CONFIG_FILE, vocabulary_file(tok_dir), WEIGHTS_FILE):
        path = Path(tok_dir) / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: not a saved idea tokenizer")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


@dataclass
class CodeCorpus:
    """Per-level codes of many documents in flat arrays.

    codes: (n_ideas, L) int32.
    doc_offsets: (n_docs + 1,) int64 first idea of each document.
    meta: what made them (see module docstring).
    """

    codes: np.ndarray
    doc_offsets: np.ndarray
    meta: dict

    @property
    def num_docs(self) -> int:
        return len(self.doc_offsets) - 1

    def doc(self, i: int) -> np.ndarray:
        """(n, L) codes of document i."""
        return self.codes[self.doc_offsets[i] : self.doc_offsets[i + 1]]

    def prefix(self, levels: int) -> CodeCorpus:
        """The same documents with only their first `levels` levels of codes."""
        return CodeCorpus(self.codes[:, :levels], self.doc_offsets, self.meta)


def shard_dir_for(tok_dir: str | Path, data: DataConfig, split: str) -> Path:
    """Where the codes of `split` ('train' | 'heldout') of `data` under this tokenizer are cached."""
    selection = json.dumps(
        [
            split,
            data.source,
            data.hub_config,
            data.split,
            data.text_column,
            data.max_docs,
            data.eval_docs,
            data.synthetic_docs,
            data.seed,
            _video_key(data.video) if is_video(data.source) else None,
            tokenizer_hash(tok_dir),
        ]
    )
    return Path(tok_dir) / "codes" / f"{split}-{hashlib.sha256(selection.encode()).hexdigest()[:12]}"


# Knobs the video world gained after codes were first cached: left out of the key at their defaults, so that the codes
# cached before them are still found.
_LATER_VIDEO_KNOBS = {"speed": 1, "exclude": None, "require": None}


def _video_key(video) -> dict:
    """The video world's knobs as the cache key reads them."""
    knobs = dataclasses.asdict(video)
    return {k: v for k, v in knobs.items() if k not in _LATER_VIDEO_KNOBS or v != _LATER_VIDEO_KNOBS[k]}


def _batches(docs: Iterable[str], n: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for d in docs:
        batch.append(d)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def encode_documents(tok: IdeaTokenizer, docs: list) -> tuple[np.ndarray, np.ndarray]:
    """(n_ideas, L) int32 codes of the documents' ideas and (n_docs + 1,) int64 document offsets (the documents
    are texts, or videos (T, H, W) of a video run: a frame an idea)."""
    if tok.is_video:
        codes = tok.encode_frames(np.stack(docs))
        offsets = np.arange(len(docs) + 1, dtype=np.int64) * codes.ids.shape[1]
        return codes.flat().numpy().astype(np.int32), offsets
    ideas = [tok.split(d) for d in docs]
    flat = [idea for doc in ideas for idea in doc]
    codes = tok.encode_ideas(flat).numpy().astype(np.int32) if flat else np.zeros((0, tok.levels), np.int32)
    return codes, np.concatenate([[0], np.cumsum([len(x) for x in ideas])]).astype(np.int64)


def encode_corpus(
    tok: IdeaTokenizer, tok_dir: str | Path, split: Split, out_dir: str | Path, shard_docs: int = 20000
) -> CodeCorpus:
    """Encode every document of `split` and write the shards to `out_dir` (atomically).

    Args:
        tok: the frozen tokenizer loaded from `tok_dir`.
        tok_dir: its run directory (recorded with its content hash).
        split: documents to encode.
        out_dir: the shard directory to create.
        shard_docs: documents per shard file.

    Returns:
        The encoded corpus.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp"))
    meta = {
        "tokenizer": str(Path(tok_dir).resolve()),
        "tokenizer_hash": tokenizer_hash(tok_dir),
        "levels": tok.levels,
        "codebook_sizes": list(tok.codebook_sizes),
        "segmenter": tok.cfg.data.segmenter,
        "chunk_size": tok.cfg.data.chunk_size,
        "shards": 0,
        "docs": 0,
        "ideas": 0,
    }
    try:
        for i, docs in enumerate(_batches(split.docs(), shard_docs)):
            codes, offsets = encode_documents(tok, docs)
            np.savez(tmp / f"shard_{i:05d}.npz", codes=codes, doc_offsets=offsets)
            meta["shards"], meta["docs"], meta["ideas"] = i + 1, meta["docs"] + len(docs), meta["ideas"] + len(codes)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return load_corpus(out_dir)


def load_corpus(shard_dir: str | Path, expect_hash: str | None = None) -> CodeCorpus:
    """Read a shard directory.

    Raises:
        FileNotFoundError: no meta.json (not a finished shard directory).
        TokenizerMismatchError: the shards were made by a tokenizer whose hash is not `expect_hash`.
    """
    shard_dir = Path(shard_dir)
    if not (shard_dir / META_FILE).is_file():
        raise FileNotFoundError(f"{shard_dir / META_FILE} not found: not a code shard directory")
    meta = json.loads((shard_dir / META_FILE).read_text())
    if expect_hash is not None and meta["tokenizer_hash"] != expect_hash:
        raise TokenizerMismatchError(
            f"codes in {shard_dir} were made by tokenizer {meta['tokenizer_hash']}, not {expect_hash}: re-encode"
        )
    codes, offsets = [], [np.zeros(1, dtype=np.int64)]
    for i in range(meta["shards"]):
        with np.load(shard_dir / f"shard_{i:05d}.npz") as z:
            offsets.append(z["doc_offsets"][1:] + sum(len(c) for c in codes))
            codes.append(z["codes"])
    flat = np.concatenate(codes) if codes else np.zeros((0, meta["levels"]), dtype=np.int32)
    return CodeCorpus(flat, np.concatenate(offsets).astype(np.int64), meta)


def codes_for(tok: IdeaTokenizer, tok_dir: str | Path, data: DataConfig, split: str, docs: Split) -> CodeCorpus:
    """The cached codes of a split, encoding them first when they are not on disk yet."""
    where = shard_dir_for(tok_dir, data, split)
    if (where / META_FILE).is_file():
        return load_corpus(where, expect_hash=tokenizer_hash(tok_dir))
    return encode_corpus(tok, tok_dir, docs, where)
