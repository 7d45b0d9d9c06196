"""Total codelength: hierarchical bits per byte (planner bits for the codes + decoder bits for the tokens
given the codes) beside a flat LM's bits per byte, on exactly the same bytes.

Codes are a deterministic function of the text, so (codes, tokens given codes) is a lossless encoding of the
text and its total length is directly comparable with the flat LM's. The code is sent idea by idea: the
planner's bits for idea t's codes given the ideas before it, then the decoder's bits for idea t's tokens
given its codes and the earlier ideas (whose text the receiver has by then). Documents longer than the
planner's window are scored window by window (each later window marked as a continuation); documents longer
than the flat LM's context are scored with overlapping windows. END (planner) and EOS (decoder, flat LM) are
counted.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hiertok.codes import Codes
from hiertok.data.ideas import IdeaCorpus
from hiertok.errors import UserError
from hiertok.evaluate import corpus_codes, idea_nats
from hiertok.flat_lm import FlatLM, TokenWindows, count_params
from hiertok.pipeline import Pipeline
from planner.evaluate import idea_code_nats
from planner.shards import CodeCorpus
from planner.windows import Windows


@dataclass
class Codelength:
    """Results of `hiertok eval codelength` (JSON keys are the field names)."""

    docs: int
    bytes: int
    bpb_hier: float
    bpb_hier_codes: float
    bpb_hier_tokens: float
    bpb_flat: float | None
    params_hier: int
    params_flat: int | None
    # Training budgets: seconds in optimizer steps (`train_s` of the runs' metrics logs), tokenizer + planner
    # for the hierarchy. None when a run's metrics log is missing (or the models were given in memory).
    train_s_hier: float | None = None
    train_s_flat: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class IdeaBits:
    """Where a document's bits go: per idea (documents in order), the codes' and the tokens' bits."""

    code_bits: np.ndarray  # (n_ideas,) planner bits of each idea's codes given the ideas before it
    token_bits: np.ndarray  # (n_ideas,) decoder bits of each idea's tokens (and EOS) given its codes and story
    end_bits: float  # planner bits of END after every document, summed
    doc_offsets: np.ndarray  # (n_docs + 1,) first idea of each document

    @property
    def total(self) -> float:
        return float(self.code_bits.sum() + self.token_bits.sum() + self.end_bits)


def idea_bits(pipe: Pipeline, docs: list[str]) -> IdeaBits:
    """The hierarchical codelength of `docs`, idea by idea.

    Args:
        pipe: tokenizer + planner.
        docs: the documents.
    """
    tok = pipe.tokenizer
    corpus = IdeaCorpus.build(docs, tok.bpe, tok.segmentation)
    if corpus.num_ideas == 0:
        raise UserError("no text to score: the documents are empty")
    return corpus_bits(pipe, corpus, corpus_codes(tok, corpus))


def corpus_bits(pipe: Pipeline, corpus: IdeaCorpus, codes: Codes) -> IdeaBits:
    """Bits of a corpus's ideas sent with the given codes (the codes of its text make the lossless code;
    other codes let tests move one part while holding the other).

    Args:
        pipe: tokenizer + planner.
        corpus: the ideas' tokens.
        codes: (docs, ideas, L) their codes; the planned levels are read.
    """
    codes = codes.prefix(pipe.levels)  # the planned levels; the decoder expands from them
    held = CodeCorpus(codes.flat().numpy(), corpus.doc_offsets, {})
    code_nats, end_nats = idea_code_nats(pipe.planner, Windows(held, pipe.cfg.data.window))
    token_nats, _ = idea_nats(pipe.tokenizer, corpus, codes, states=pipe.idea_states(codes))
    ln2 = math.log(2)
    return IdeaBits(code_nats / ln2, token_nats.numpy() / ln2, end_nats / ln2, corpus.doc_offsets)


def evaluate_codelength(pipe: Pipeline, flat: FlatLM | None, docs: list[str]) -> Codelength:
    """Bits per byte of `docs` under the hierarchical system and (if given) the flat LM.

    Args:
        pipe: tokenizer + planner.
        flat: the flat baseline (same BPE as the tokenizer), or None.
        docs: the documents.
    """
    tok = pipe.tokenizer
    n_bytes = sum(len(d.encode("utf-8")) for d in docs)
    bits = idea_bits(pipe, docs)
    code_bits, token_bits = float(bits.code_bits.sum()) + bits.end_bits, float(bits.token_bits.sum())
    result = Codelength(
        docs=len(docs),
        bytes=n_bytes,
        bpb_hier=(code_bits + token_bits) / n_bytes,
        bpb_hier_codes=code_bits / n_bytes,
        bpb_hier_tokens=token_bits / n_bytes,
        bpb_flat=None,
        params_hier=count_params(pipe.planner) + count_params(tok.model),
        params_flat=None,
    )
    if flat is not None:
        from hiertok.train_baseline import document_ids, flat_nats

        windows = TokenWindows.build(document_ids(tok, docs), flat.cfg.context, overlap=True)
        nats, _ = flat_nats(flat, windows, tok.bpe.pad_id)
        result.bpb_flat = nats / math.log(2) / n_bytes
        result.params_flat = count_params(flat)
    return result


def evaluate_codelength_run(
    ckpt: str,
    baseline: str | None,
    data: str | None,
    max_docs: int | None,
    tokenizer: str | None = None,
    device: str | torch.device = "cpu",
) -> Codelength:
    """What `hiertok eval codelength` runs: held-out documents (default: the planner's held-out part)."""
    from hiertok.data.bpe import BPE
    from hiertok.data.corpus import heldout_split
    from hiertok.flat_lm import load_baseline
    from hiertok.tokenizer import BPE_FILE
    from planner.config import data_config

    pipe = Pipeline.from_pretrained(ckpt, tokenizer=tokenizer, device=device)
    pipe.tokenizer.require_text("evaluating it")  # no evaluation of video runs yet
    flat = None
    if baseline is not None:
        flat, bcfg = load_baseline(baseline)
        flat = flat.to(device)
        if BPE.load(Path(bcfg.tokenizer) / BPE_FILE).to_str() != pipe.tokenizer.bpe.to_str():
            raise UserError(f"baseline {baseline} was trained on other BPE tokens than planner {ckpt}'s tokenizer")
    split = heldout_split(data_config(pipe.cfg, pipe.tokenizer), source=data, limit=max_docs)
    result = evaluate_codelength(pipe, flat, list(split.docs()))
    result.train_s_hier = _budget(pipe.cfg.tokenizer, ckpt)
    result.train_s_flat = _budget(baseline) if baseline is not None else None
    return result


def _budget(*run_dirs: str) -> float | None:
    """Summed optimizer-step seconds of training runs; None when a run has no metrics log (unknown)."""
    from hiertok.training import train_seconds

    seconds = [train_seconds(d) for d in run_dirs]
    return None if None in seconds else round(sum(seconds), 1)
