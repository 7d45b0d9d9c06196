"""Held-out evaluation of an idea tokenizer: reconstruction per prefix of levels, code usage, bits.

Definitions (k = number of levels given to the decoder):
- exact_match_by_prefix[k]: fraction of ideas whose greedy decoding equals the original text exactly.
- token_accuracy_by_prefix[k]: teacher-forced next-token accuracy (EOS included) given the k-level codes.
- char_similarity_by_prefix[k]: mean difflib ratio between greedy decoding and original (1 = identical).
- bits_per_idea_by_prefix[k]: sum of log2 codebook sizes of levels 1..k.
- bpb_by_prefix[k]: decoder bits per UTF-8 byte of the ideas given their true k-level codes (and, with a story
  context, the text of the ideas before each, as a lossless code has them).
- bpb_true_codes / bpb_shuffled_codes: the same at full depth, with codes permuted across ideas.
- utilization_by_level: fraction of a level's codes used at least once on the held-out ideas;
  usage_perplexity_by_level: exp(entropy of code usage) / codebook size.
- event_nmi_level1 (synthetic): normalized mutual information (arithmetic mean) of level-1 codes and events.
- exact_match_unseen (synthetic): full-depth exact match on held-out ideas whose text never occurs in training.
- story_valid_decoded (synthetic): fraction of held-out stories that, decoded from their full-depth codes, are
  grammar-valid and keep their cast (`hiertok.data.story_state`): "first_known" with the first sentence given
  as text (as a prompt is) and each later idea reading the decoded text before it ("first_known_level1": the
  same from level 1 alone, as a plan of the gist is expanded; "first_known_level{k}" from the k levels a planner
  plans, for a tokenizer trained with quantizer.plan_levels = k), "codes" from the codes alone;
  story_breaks_decoded: where the "first_known" stories that fail break first (`CastChecker.count_breaks`).
- cast_kept_true_story (synthetic, a decoder with a story context): the decoder alone, with nothing decoded
  before: the fraction of held-out ideas (after each story's first) that, decoded from their full-depth codes
  with the TRUE story before them as text, keep that story's cast; cast_breaks_true_story: where the others break
  ("SLOT@EVENT", `CastChecker.cast_break`).
- continuous_next_idea (tokenizers trained with model.loss.next_mse_weight > 0): the MSE regressor's
  prediction of each held-out idea (one with a previous idea) from the ideas before it, quantized: top1_level1 /
  top1_full = fraction whose codes equal the true idea's at level 1 / at every level (comparable with the
  planner's next_idea_top1), mse and cosine between predicted and true vectors.
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from hiertok.codes import Codes
from hiertok.data.ideas import IdeaCollator, IdeaCorpus
from hiertok.errors import UserError
from hiertok.tokenizer import IdeaTokenizer
from hiertok.video_eval import VideoTokenizerEval, evaluate_video_tokenizer_run


@dataclass
class TokenizerEval:
    """Evaluation results (JSON keys are the field names; per-prefix dicts are keyed "1".."L")."""

    num_ideas: int
    bytes: int
    exact_match_by_prefix: dict[str, float]
    token_accuracy_by_prefix: dict[str, float]
    char_similarity_by_prefix: dict[str, float]
    bits_per_idea_by_prefix: dict[str, float]
    bpb_by_prefix: dict[str, float]
    utilization_by_level: dict[str, float]
    usage_perplexity_by_level: dict[str, float]
    bpb_true_codes: float
    bpb_shuffled_codes: float
    event_nmi_level1: float | None = None
    exact_match_unseen: float | None = None
    num_unseen: int | None = None
    continuous_next_idea: dict[str, float] | None = None
    story_valid_decoded: dict[str, float] | None = None
    story_breaks_decoded: dict[str, int] | None = None
    cast_kept_true_story: float | None = None
    cast_breaks_true_story: dict[str, int] | None = None
    examples: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def prefix_bits(codebook_sizes: Sequence[int], k: int) -> float:
    """Raw bits of an idea's first k codes: the sum of log2 of their codebook sizes."""
    return float(sum(math.log2(s) for s in codebook_sizes[:k]))


def corpus_codes(tok: IdeaTokenizer, corpus: IdeaCorpus) -> Codes:
    """Encode every idea of a corpus into a (docs, ideas, L) `Codes` grid."""
    flat = tok.encode_ideas([corpus.idea(i) for i in range(corpus.num_ideas)])
    return Codes.from_flat(flat, np.diff(corpus.doc_offsets).tolist(), tok.codebook_sizes)


def idea_nats(
    tok: IdeaTokenizer,
    corpus: IdeaCorpus,
    codes: Codes,
    text_context: bool = True,
    batch_size: int = 256,
    states: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder nats of each idea's tokens (EOS included) given its codes (any prefix) and its story so far.

    An idea's decoder reads only what a receiver of the text already has: its own codes and the ideas before
    it, by text (`text_context`, as a lossless code decodes them) or by codes. So changing an idea never
    changes the nats of an earlier one.

    Args:
        tok: the tokenizer.
        corpus: the ideas, in `codes`' order.
        codes: their codes (the first k levels are read).
        text_context: show the earlier ideas by their text (False: by their codes only).
        batch_size: ideas per forward pass.
        states: (N, state_dim) each idea's state, for a decoder that reads one (`DecoderConfig.state_dim`).

    Returns:
        nats (N,) and teacher-forced correct next tokens (N,) per idea.
    """
    with torch.no_grad():
        model = tok.model.eval()
        vectors = model.quantizer.decode_indices(codes.flat().to(tok.device))
        collate = IdeaCollator(corpus, tok.bpe.pad_id, context=model.decoder.cfg.context)
        nats = torch.zeros(corpus.num_ideas, dtype=torch.float64)
        correct = torch.zeros(corpus.num_ideas, dtype=torch.long)
        order = np.argsort(np.diff(corpus.idea_offsets), kind="stable")  # similar lengths pad less
        for start in range(0, corpus.num_ideas, batch_size):
            ideas = order[start : start + batch_size]
            batch = collate(ideas).to(tok.device)  # the ideas, and the earlier ideas they read
            known = torch.full_like(batch.context, text_context, dtype=torch.bool)
            state = None if states is None else states[batch.ideas[batch.targets]].to(tok.device)
            cond = model.decoder_condition(
                batch.targets, batch.context, vectors[batch.ideas], batch.tokens, batch.mask, known, state=state
            )
            tokens, mask = batch.rows(batch.targets)
            inp, target, tmask = model.decoder.teacher_forcing(tokens, mask)
            scored = model.decoder.score(inp, cond, target)
            nats[ideas] = -(scored.log_prob * tmask).sum(1).double().cpu()
            correct[ideas] = ((scored.predicted == target) & tmask).sum(1).cpu()
        return nats, correct


def teacher_forced(
    tok: IdeaTokenizer, corpus: IdeaCorpus, codes: Codes, text_context: bool = True
) -> tuple[float, float]:
    """Decoder nats summed over all ideas (tokens + EOS) and token accuracy, given `codes` (see `idea_nats`).

    Returns:
        (total nats, accuracy).
    """
    nats, correct = idea_nats(tok, corpus, codes, text_context)
    targets = int(np.diff(corpus.idea_offsets).sum()) + corpus.num_ideas  # every token and one EOS per idea
    return float(nats.sum()), int(correct.sum()) / max(1, targets)


def normalized_mutual_information(a: Sequence, b: Sequence) -> float:
    """NMI(a, b) = I(a; b) / mean(H(a), H(b)) (sklearn's default normalisation); 0 if both are constant."""
    n = len(a)
    pa, pb, pab = Counter(a), Counter(b), Counter(zip(a, b))
    mi = sum(c / n * math.log(c * n / (pa[x] * pb[y])) for (x, y), c in pab.items())
    ha = -sum(c / n * math.log(c / n) for c in pa.values())
    hb = -sum(c / n * math.log(c / n) for c in pb.values())
    denom = (ha + hb) / 2
    return mi / denom if denom > 0 else 0.0


def evaluate_tokenizer(
    tok: IdeaTokenizer,
    corpus: IdeaCorpus,
    train_texts: set[str] | None = None,
    max_examples: int = 5,
    progress: bool = True,
    story_measures: bool = True,
) -> TokenizerEval:
    """Evaluate a tokenizer on held-out ideas.

    Args:
        tok: the tokenizer.
        corpus: held-out ideas (with events for the synthetic world).
        train_texts: idea texts seen in training, for exact_match_unseen.
        max_examples: reconstructions kept for display (original / each prefix).
        progress: show a progress bar over the prefixes.
        story_measures: decode the synthetic world's stories again for story_valid_decoded and
            cast_kept_true_story (False: leave them None; the demo does not show them).

    Returns:
        TokenizerEval.
    """
    if corpus.num_ideas == 0:
        raise UserError("no ideas to evaluate: the held-out data is empty")
    texts = [tok.bpe.decode(corpus.idea(i).tolist()) for i in range(corpus.num_ideas)]
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    codes = corpus_codes(tok, corpus)
    flat = codes.flat()
    L = tok.levels
    em, acc, sim, bits, bpb, decoded_by_k = {}, {}, {}, {}, {}, {}
    for k in tqdm(range(1, L + 1), desc="eval prefixes", disable=not progress, dynamic_ncols=True):
        decoded = [t for doc in tok.decode_ideas(codes, levels=k) for t in doc]
        decoded_by_k[k] = decoded
        em[str(k)] = float(np.mean([d == t for d, t in zip(decoded, texts)]))
        sim[str(k)] = float(np.mean([difflib.SequenceMatcher(None, d, t).ratio() for d, t in zip(decoded, texts)]))
        nats, acc[str(k)] = teacher_forced(tok, corpus, codes.prefix(k))
        bpb[str(k)] = nats / math.log(2) / n_bytes
        bits[str(k)] = prefix_bits(tok.codebook_sizes, k)
    perm = torch.randperm(len(flat), generator=torch.Generator().manual_seed(0))
    shuffled = codes.ids.clone()
    shuffled[codes.mask] = flat[perm]
    nats_shuffled, _ = teacher_forced(tok, corpus, Codes(shuffled, codes.mask, codes.codebook_sizes))
    util, ppl = {}, {}
    for level, size in enumerate(tok.codebook_sizes):
        counts = np.bincount(flat[:, level].numpy(), minlength=size)
        p = counts[counts > 0] / counts.sum()
        util[str(level + 1)] = float((counts > 0).sum() / size)
        ppl[str(level + 1)] = float(math.exp(-(p * np.log(p)).sum()) / size)
    result = TokenizerEval(
        num_ideas=corpus.num_ideas,
        bytes=n_bytes,
        exact_match_by_prefix=em,
        token_accuracy_by_prefix=acc,
        char_similarity_by_prefix=sim,
        bits_per_idea_by_prefix=bits,
        bpb_by_prefix=bpb,
        utilization_by_level=util,
        usage_perplexity_by_level=ppl,
        bpb_true_codes=bpb[str(L)],
        bpb_shuffled_codes=nats_shuffled / math.log(2) / n_bytes,
    )
    labelled = [i for i, e in enumerate(corpus.events or []) if e is not None]
    if labelled:
        result.event_nmi_level1 = normalized_mutual_information(
            [int(flat[i, 0]) for i in labelled], [corpus.events[i] for i in labelled]
        )
    if train_texts is not None:
        unseen = [i for i, t in enumerate(texts) if t.strip() not in train_texts]
        result.num_unseen = len(unseen)
        if unseen:
            result.exact_match_unseen = float(np.mean([decoded_by_k[L][i] == texts[i] for i in unseen]))
    result.continuous_next_idea = continuous_next_idea(tok, corpus, flat)
    if labelled and story_measures:
        decoded = story_valid_decoded(tok, corpus, codes, decoded_by_k[L])
        result.story_valid_decoded, result.story_breaks_decoded = decoded
        if tok.model.decoder.cfg.context:
            result.cast_kept_true_story, result.cast_breaks_true_story = cast_kept_true_story(tok, corpus, flat)
    step = max(1, corpus.num_ideas // max(1, max_examples))
    for i in list(range(0, corpus.num_ideas, step))[:max_examples]:
        ex = {"original": texts[i]}
        ex.update({f"k={k}": decoded_by_k[k][i] for k in sorted({1, max(1, L // 2), L})})
        result.examples.append(ex)
    return result


def story_valid_decoded(
    tok: IdeaTokenizer, corpus: IdeaCorpus, codes: Codes, decoded: list[str]
) -> tuple[dict[str, float], dict[str, int]]:
    """Fraction of stories whose decoding is grammar-valid and keeps its cast: from the codes alone (`decoded`,
    every idea's full-depth decoding), and with each story's first sentence known as text; and where the latter
    break (`CastChecker.count_breaks`)."""
    from hiertok.data.story_state import CastChecker

    check = CastChecker()
    offsets = corpus.doc_offsets
    first = [[corpus.idea(int(lo)).tolist()] if hi > lo else [] for lo, hi in zip(offsets[:-1], offsets[1:])]
    with_first = tok.decode_ideas(codes, known=first, passes=0)  # each idea reads the decoded text before it
    gist_first = tok.decode_ideas(codes, levels=1, known=first, passes=0)  # what a plan of the gist alone gives
    from_codes = [decoded[offsets[d] : offsets[d + 1]] for d in range(corpus.num_docs)]
    valid = {
        "codes": float(np.mean([check.story_valid(doc) for doc in from_codes])),
        "first_known": float(np.mean([check.story_valid(doc) for doc in with_first])),
        "first_known_level1": float(np.mean([check.story_valid(doc) for doc in gist_first])),
    }
    planned = tok.model.quantizer.cfg.plan_levels
    if planned > 1:  # what a plan of the planner's depth gives, as generation decodes it
        at_plan = tok.decode_ideas(codes, levels=planned, known=first, passes=0)
        valid[f"first_known_level{planned}"] = float(np.mean([check.story_valid(doc) for doc in at_plan]))
    return valid, check.count_breaks(with_first)


def cast_kept_true_story(tok: IdeaTokenizer, corpus: IdeaCorpus, flat: torch.Tensor) -> tuple[float, dict[str, int]]:
    """How often the decoder keeps the cast when the story before an idea is the true one (the module docstring):
    each idea after a story's first is decoded once, as the last idea of its story's prefix, the ideas before
    it known as text, so that no decoding error of an earlier idea is counted again.

    Args:
        tok: the tokenizer (its decoder reads a story context).
        corpus: held-out ideas of the synthetic world.
        flat: (N, L) the ideas' true codes.

    Returns:
        The fraction of those ideas that keep the cast, and the first breaks of the others, most frequent first.
    """
    from hiertok.data.story_state import CastChecker

    check = CastChecker()
    offsets = corpus.doc_offsets.tolist()
    ideas = [corpus.idea(i).tolist() for i in range(corpus.num_ideas)]
    # each prefix: its story's first idea and its last idea, the one decoded
    prefixes = [(lo, t) for lo, hi in zip(offsets[:-1], offsets[1:]) for t in range(lo + 1, hi)]
    if not prefixes:
        return 0.0, {}
    rows = torch.as_tensor([i for lo, t in prefixes for i in range(lo, t + 1)])
    codes = Codes.from_flat(flat[rows], [t - lo + 1 for lo, t in prefixes], tok.codebook_sizes)
    decoded = tok.decode_ideas(codes, known=[ideas[lo:t] for lo, t in prefixes], passes=0)
    breaks = Counter()
    for (lo, t), doc in zip(prefixes, decoded):
        where = check.cast_break([tok.bpe.decode(i) for i in ideas[lo:t]] + [doc[-1]])
        if where is not None:
            breaks[where] += 1
    return 1.0 - sum(breaks.values()) / len(prefixes), dict(breaks.most_common())


def continuous_next_idea(tok: IdeaTokenizer, corpus: IdeaCorpus, codes: torch.Tensor) -> dict[str, float] | None:
    """How well the continuous (MSE) next-idea baseline predicts held-out ideas; None without that head.

    Args:
        tok: the tokenizer.
        corpus: held-out ideas.
        codes: (N, L) the ideas' true codes.

    Returns:
        {"top1_level1", "top1_full", "mse", "cosine", "num_ideas"} over ideas that have a previous idea.
    """
    with torch.no_grad():
        model = tok.model.eval()
        if model.next_mse_head is None:
            return None
        vectors = tok.idea_vectors([corpus.idea(i) for i in range(corpus.num_ideas)]).to(tok.device)
        context = model.cfg.loss.context
        prev = torch.as_tensor(corpus.previous(context), device=tok.device)
        has_prev = prev[:, 0] >= 0
        if not has_prev.any():
            return None
        pred = model.next_mse_head(vectors[prev.clamp(min=0)], prev >= 0)[has_prev]
        true = vectors[has_prev]
        got, want = model.quantizer(pred).indices.cpu(), codes[has_prev.cpu()]
        return {
            "top1_level1": float((got[:, 0] == want[:, 0]).float().mean()),
            "top1_full": float((got == want).all(-1).float().mean()),
            "mse": float(torch.nn.functional.mse_loss(pred, true)),
            "cosine": float(torch.nn.functional.cosine_similarity(pred, true, dim=-1).mean()),
            "num_ideas": int(has_prev.sum()),
        }


def evaluate_run(
    ckpt: str,
    data: str | None = None,
    max_docs: int | None = None,
    device: str | torch.device = "cpu",
    story_measures: bool = True,
) -> TokenizerEval | VideoTokenizerEval:
    """Evaluate a saved tokenizer on held-out data (what `hiertok eval tokenizer` runs; a video run's figures are
    `hiertok.video_eval`'s).

    Args:
        ckpt: tokenizer run directory.
        data: 'synthetic', a local file/directory or hub dataset; None: the training source's held-out part.
        max_docs: documents to evaluate (None: the config's eval_docs for the training source, all otherwise).
        story_measures: as for `evaluate_tokenizer`.
    """
    from hiertok.data.corpus import heldout_split, train_split
    from hiertok.data.sources import is_synthetic

    tok = IdeaTokenizer.from_pretrained(ckpt, device=device)
    if tok.is_video:
        return evaluate_video_tokenizer_run(tok, data, max_docs)
    data_cfg = tok.cfg.data
    split = heldout_split(data_cfg, source=data, limit=max_docs)
    corpus = IdeaCorpus.build(split.docs(), tok.bpe, tok.segmentation, split.events)
    train_texts = None
    if is_synthetic(data or data_cfg.source) and is_synthetic(data_cfg.source):
        train = IdeaCorpus.build(train_split(data_cfg).docs(), tok.bpe, tok.segmentation)
        train_texts = {tok.bpe.decode(train.idea(i).tolist()).strip() for i in range(train.num_ideas)}
    return evaluate_tokenizer(tok, corpus, train_texts, story_measures=story_measures)
