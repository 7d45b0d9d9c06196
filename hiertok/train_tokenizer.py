"""Stage 1: train the idea tokenizer (encoder + quantizer + decoder) with Accelerate.

    hiertok train tokenizer --config configs/tokenizer/tiny.yaml --out runs/tok [--resume] [key=value ...]

The run directory ends up loadable with `IdeaTokenizer.from_pretrained(run_dir)`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hiertok.autoencoder import validate_losses
from hiertok.data.bpe import BPE
from hiertok.data.corpus import heldout_split, is_video, pixel_vocab, train_split, video_splits
from hiertok.data.ideas import IdeaCollator, IdeaCorpus
from hiertok.data.pixels import PIXELS_FILE, PixelVocab, video_corpus
from hiertok.errors import UserError
from hiertok.evaluate import corpus_codes
from hiertok.layers import check_stack
from hiertok.quantize import validate
from hiertok.stage import Stage
from hiertok.tokenizer import BPE_FILE, IdeaTokenizer, TokenizerConfig, segmentation_of
from hiertok.training import (
    StepBatches,
    make_accelerator,
    prepare_run_dir,
)


@dataclass
class TrainResult:
    """What a finished run reports."""

    run_dir: Path
    steps: int
    seconds: float
    last_eval: dict[str, float]


def load_or_train_bpe(cfg: TokenizerConfig, run_dir: Path, accelerator) -> BPE:
    """The run's BPE: trained on the first `bpe_docs` training documents, or reloaded when resuming."""
    path = run_dir / BPE_FILE
    if accelerator.is_main_process and not path.exists():
        docs = itertools.islice(train_split(cfg.data).docs(), cfg.data.bpe_docs)
        BPE.train(docs, cfg.data.vocab_size).save(path)
    accelerator.wait_for_everyone()
    return BPE.load(path)


def load_vocabulary(cfg: TokenizerConfig, run_dir: Path, accelerator) -> BPE | PixelVocab:
    """The run's token ids: pixels for a video source (written to the run), else its BPE."""
    if not is_video(cfg.data.source):
        return load_or_train_bpe(cfg, run_dir, accelerator)
    vocab = pixel_vocab(cfg.data)
    if accelerator.is_main_process:
        vocab.save(run_dir / PIXELS_FILE)
    return vocab


def idea_tokens(cfg: TokenizerConfig) -> int:
    """The longest idea in tokens: a frame's pixels, or the text segmentation's cap."""
    return pixel_vocab(cfg.data).frame_tokens if is_video(cfg.data.source) else cfg.data.max_idea_tokens


def build_corpora(cfg: TokenizerConfig, bpe: BPE | PixelVocab) -> tuple[IdeaCorpus, IdeaCorpus]:
    """Segment and tokenize the training and held-out documents (or videos: a frame an idea)."""
    if isinstance(bpe, PixelVocab):
        train, held = video_splits(cfg.data)
        return video_corpus(train, bpe), video_corpus(held, bpe)
    seg = segmentation_of(cfg.data)
    train, held = train_split(cfg.data), heldout_split(cfg.data)
    return (
        IdeaCorpus.build(train.docs(), bpe, seg, train.events),
        IdeaCorpus.build(held.docs(), bpe, seg, held.events),
    )


def training_collator(cfg: TokenizerConfig, corpus: IdeaCorpus, pad_id: int) -> IdeaCollator:
    """Batches with the earlier ideas the decoder reads and the next-idea losses predict from."""
    losses = cfg.model.loss
    previous = losses.context if losses.next_idea_weight > 0 or losses.next_mse_weight > 0 else 0
    return IdeaCollator(corpus, pad_id, cfg.model.decoder.context, previous)


@torch.no_grad()
def quick_eval(tok: IdeaTokenizer, corpus: IdeaCorpus, n: int, collate: IdeaCollator) -> dict[str, float]:
    """Held-out teacher-forced loss on `n` ideas and greedy exact match at level 1 and at full depth."""
    model = tok.model.eval()
    n = min(n, corpus.num_ideas)
    batch = collate(list(range(n))).to(tok.device)
    out = model(batch)
    docs = corpus.doc_offsets[corpus.doc_offsets < n]  # whole documents, the last one cut at n ideas
    sub = IdeaCorpus(corpus.tokens, corpus.idea_offsets[: n + 1], np.append(docs, n), None)
    codes = corpus_codes(tok, sub)
    texts = [tok.bpe.decode(sub.idea(i).tolist()) for i in range(n)]  # strings, or frames of a video run
    result = {"recon": float(out.recon), "token_accuracy": float(out.token_accuracy)}
    result.update({name: float(value) for name, value in out.terms.items()})
    for k in sorted({1, tok.levels}):
        decoded = [t for doc in tok.decode_ideas(codes, levels=k) for t in doc]
        result[f"exact_match_k{k}"] = float(np.mean([np.array_equal(d, t) for d, t in zip(decoded, texts)]))
    return result


def train(cfg: TokenizerConfig, run_dir: str | Path, resume: bool = False) -> TrainResult:
    """Train an idea tokenizer into `run_dir`.

    Args:
        cfg: the resolved config.
        run_dir: output directory (config.yaml, tokenizer.json, checkpoints/, metrics.jsonl, model.safetensors).
        resume: continue from the latest checkpoint in `run_dir`.

    Returns:
        TrainResult with the number of steps and the last held-out evaluation.
    """
    cfg.data.validate()
    for part in ("encoder", "decoder"):  # before the BPE is trained and the run directory written
        c = getattr(cfg.model, part)
        check_stack(c.dim, c.depth, c.heads, c.dim_head, f"model.{part}.")
    validate(cfg.model.quantizer)
    cfg.model.decoder.validate()
    if cfg.model.decoder.state_dim:  # no planner exists yet to give the state: its weights would never train
        raise UserError(
            "model.decoder.state_dim is learnt after the planner (experiments/planner_state.py), not by the tokenizer"
        )
    validate_losses(cfg.model.loss, cfg.model.quantizer.levels, cfg.model.quantizer.hierarchy)
    if cfg.model.loss.copy_pointer_weight > 0 and not cfg.model.decoder.copy:
        raise UserError("model.loss.copy_pointer_weight trains the copy head's pointer: it needs model.decoder.copy")
    if cfg.generation.max_tokens < idea_tokens(cfg):
        limit = "a frame's pixels" if is_video(cfg.data.source) else "data.max_idea_tokens"
        raise UserError(
            f"generation.max_tokens ({cfg.generation.max_tokens}) < {limit} ({idea_tokens(cfg)}): decoded ideas "
            "would be cut short"
        )
    if cfg.generation.max_tokens > cfg.model.decoder.max_len:
        raise UserError(
            f"generation.max_tokens ({cfg.generation.max_tokens}) > model.decoder.max_len "
            f"({cfg.model.decoder.max_len}): the decoder is sized for ideas of at most max_len tokens"
        )
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, cfg, resume)
    acc = make_accelerator(cfg.train, run_dir)
    bpe = load_vocabulary(cfg, run_dir, acc)
    train_corpus, eval_corpus = build_corpora(cfg, bpe)
    tc = cfg.train
    collate = training_collator(cfg, train_corpus, bpe.pad_id)
    eval_collate = IdeaCollator(eval_corpus, bpe.pad_id, cfg.model.decoder.context)  # held-out reconstruction
    plan = StepBatches(
        train_corpus.num_ideas,
        tc.batch_size,
        tc.seed,
        acc.process_index,
        acc.num_processes,
        lengths=np.diff(train_corpus.idea_offsets),
        pool=tc.bucket_pool,
    )

    tok = IdeaTokenizer(cfg, bpe)
    stage = Stage.prepare(acc, tok.model, cfg, tc, run_dir, resume, "tokenizer")
    model, start = stage.model, stage.start
    if start == 0 and cfg.model.quantizer.kind == "vq":
        init_codebooks(tok, train_corpus, collate)

    acc.print(
        f"training tokenizer: {train_corpus.num_ideas} ideas ({train_corpus.num_docs} docs), "
        f"{sum(p.numel() for p in tok.model.parameters()) / 1e6:.2f}M params, steps {start}..{tc.max_steps}"
    )

    def loss_fn(micro: int) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(collate(plan.indices(micro)).to(acc.device))
        values = {"loss": out.loss.item(), "recon": out.recon.item(), "token_accuracy": out.token_accuracy.item()}
        if cfg.model.loss.bow_weight > 0:
            values["bow"] = out.bow.item()
        if cfg.model.quantizer.kind != "fsq":
            values["aux"] = out.aux.item()
        values.update({name: value.item() for name, value in out.terms.items()})
        return out.loss, values

    result = stage.run(loss_fn, lambda: quick_eval(tok, eval_corpus, tc.eval_ideas, eval_collate))

    def save(trained: torch.nn.Module) -> None:
        tok.model = trained
        tok.save_pretrained(run_dir)

    stage.finish(save)
    return TrainResult(run_dir, result.steps, stage.seconds, result.last_eval)


@torch.no_grad()
def init_codebooks(tok: IdeaTokenizer, corpus: IdeaCorpus, collate: IdeaCollator) -> None:
    """VQ's k-means init runs on the first batch it sees: give it several vectors per code."""
    need = 4 * max(tok.codebook_sizes)
    idx = np.random.default_rng(tok.cfg.train.seed).permutation(corpus.num_ideas)[:need]
    batch = collate(idx.tolist())
    model = tok.model.train()
    model.quantizer(model.encoder(batch.tokens.to(tok.device), batch.mask.to(tok.device)))
