"""Batched generation for the idea decoder (and any model with its call): greedy, temperature / top-k /
top-p sampling, beam search.

All ideas of a batch decode together with the KV cache. The search is written here rather than taken
from x-transformers' `AutoregressiveWrapper`: its beam search neither expands a conditioning prefix per
beam, nor reorders the caches of conditioned models, nor stops at an end token, and we need per-idea scores.

A model generates here if it is called as `model(tokens, cond, cache=cache) -> (logits, cache)` and has
`special` ids; the flat LM does so with an empty prefix and its prompt as the `start` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange, repeat
from torch import Tensor

from decoder.model import Condition, IdeaDecoder
from hiertok.sampling import filter_logits


@dataclass
class GenerationConfig:
    """How to turn prefix embeddings into tokens."""

    max_tokens: int = 64  # per idea, EOS excluded
    temperature: float = 0.0  # 0 = greedy (or beam search when num_beams > 1)
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off
    num_beams: int = 1
    length_penalty: float = 1.0  # beam score = logprob / length ** length_penalty
    # Frames only: a decoded frame that does not encode back to its codes is searched over its m least sure pixels
    # (hiertok/frame_search.py, analysis by synthesis). 0: off.
    search_pixels: int = 0


@dataclass
class StopAfter:
    """Also end a row once it has written `count` tokens of the `ends` set (e.g. sentence ends).

    ends: (V,) bool, True at the tokens that count.
    """

    ends: Tensor
    count: int


@dataclass
class Generated:
    """Token ids per idea (no BOS/EOS) and their total log-probability (nats) under the decoder."""

    tokens: list[list[int]]
    logprobs: Tensor  # (B,)


def _start(decoder: IdeaDecoder, cond: Condition, start: Tensor | None) -> Tensor:
    """(B, S) the tokens generation continues: `start`, or BOS."""
    if start is not None:
        return start.to(cond.device)
    return torch.full((len(cond), 1), decoder.special.bos, dtype=torch.long, device=cond.device)


def _stopped(stop: StopAfter | None, counts: Tensor, nxt: Tensor) -> tuple[Tensor, Tensor]:
    """Updated per-row counts of `stop.ends` tokens and whether each row has now written enough of them."""
    if stop is None:
        return counts, torch.zeros_like(nxt, dtype=torch.bool)
    counts = counts + stop.ends.to(nxt.device)[nxt].long()
    return counts, counts >= stop.count


def generate(
    decoder: IdeaDecoder,
    cond: Condition,
    cfg: GenerationConfig,
    generator: torch.Generator | None = None,
    start: Tensor | None = None,
    stop: StopAfter | None = None,
) -> Generated:
    """Decode every idea of a batch at once.

    Args:
        decoder: the idea decoder (eval mode is the caller's business).
        cond: what each row decodes from (`IdeaDecoder.condition`).
        cfg: decoding settings.
        generator: random generator for sampling (seeded for reproducible samples).
        start: (B, S) tokens to continue (default: BOS); only the tokens after them are returned.
        stop: also end a row after this many tokens of a set.

    Returns:
        Generated tokens per idea and their log-probabilities.
    """
    with torch.no_grad():
        if isinstance(decoder, IdeaDecoder) and decoder.cfg.parallel:
            if start is not None or stop is not None:
                raise ValueError("a parallel decoder writes a whole idea from its code: no start tokens or stop set")
            return write_at_once(decoder, cond, cfg, generator)
        if cfg.num_beams > 1:
            return beam_search(decoder, cond, cfg, start, stop)
        b, eos, dev = len(cond), decoder.special.eos, cond.device
        out = torch.full((b, cfg.max_tokens + 1), eos, dtype=torch.long, device=dev)
        logprob = torch.zeros(b, device=dev)
        counts = torch.zeros(b, dtype=torch.long, device=dev)
        active = torch.arange(b, device=dev)  # rows still decoding; finished rows leave the batch
        tokens = _start(decoder, cond, start)
        cache = None
        for step in range(cfg.max_tokens + 1):
            logits, cache = decoder(tokens, cond, cache=cache)
            logits = logits[:, -1].float()
            logp = logits.log_softmax(-1)
            if step == cfg.max_tokens:  # out of budget: end here (log-probabilities then cover tokens + EOS)
                nxt = torch.full((len(active),), eos, dtype=torch.long, device=dev)
            elif cfg.temperature > 0:
                probs = filter_logits(logits / cfg.temperature, cfg.top_k, cfg.top_p).softmax(-1)
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            else:
                nxt = logits.argmax(-1)
            logprob[active] += logp.gather(1, nxt[:, None]).squeeze(1)
            out[active, step] = nxt
            counts, enough = _stopped(stop, counts, nxt)
            going = (nxt != eos) & ~enough  # a row that stopped keeps EOS after its last token (`out`'s fill)
            if not bool(going.any()):
                break
            if not bool(going.all()):  # compact: later steps cost only what is still decoding
                keep = going.nonzero().squeeze(1)
                active, tokens, cond, nxt, counts = active[keep], tokens[keep], cond.rows(keep), nxt[keep], counts[keep]
                _reorder_cache(cache, keep)
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
        return Generated(_strip(out, eos, cfg.max_tokens), logprob)


def write_at_once(
    decoder: IdeaDecoder, cond: Condition, cfg: GenerationConfig, generator: torch.Generator | None = None
) -> Generated:
    """A parallel decoder's ideas (`DecoderConfig.parallel`): every position in one forward pass, each token chosen
    on its own (argmax, or sampled), the text cut at its first EOS.

    The tokens are independent given the code: there is no history for beam search to keep, and `num_beams` decodes
    greedily (the per-position argmax; for an idea of fixed length, a frame, that is the most likely one).

    Args:
        decoder: a parallel idea decoder.
        cond: what each row decodes from.
        cfg: max_tokens, temperature / top_k / top_p.
        generator: random generator for sampling.

    Returns:
        Generated tokens per idea and their log-probabilities (the tokens and the EOS that ends them).
    """
    b, eos, dev = len(cond), decoder.special.eos, cond.device
    inp = torch.full((b, cfg.max_tokens + 1), decoder.special.pad, dtype=torch.long, device=dev)
    inp[:, 0] = decoder.special.bos
    logits, _ = decoder(inp, cond)
    logits = logits.float()
    logp = logits.log_softmax(-1)
    if cfg.temperature > 0:
        flat = filter_logits(rearrange(logits, "b t v -> (b t) v") / cfg.temperature, cfg.top_k, cfg.top_p)
        out = rearrange(torch.multinomial(flat.softmax(-1), 1, generator=generator), "(b t) 1 -> b t", b=b)
    else:
        out = logits.argmax(-1)
    out[:, -1] = eos  # out of budget: the last position ends the idea (at its own probability of EOS)
    ends = (out == eos).int().argmax(-1)  # the first EOS (the last position always holds one)
    upto = torch.arange(out.shape[1], device=dev)[None] <= ends[:, None]
    logprob = torch.where(upto, logp.gather(-1, out[..., None])[..., 0], 0.0).sum(-1)
    return Generated(_strip(out, eos, cfg.max_tokens), logprob)


def beam_search(
    decoder: IdeaDecoder,
    cond: Condition,
    cfg: GenerationConfig,
    start: Tensor | None = None,
    stop: StopAfter | None = None,
) -> Generated:
    """Beam search per idea, all ideas and beams in one batch of B*K rows with a reordered KV cache.

    Args:
        decoder: the idea decoder.
        cond: what each row decodes from.
        cfg: num_beams K, max_tokens, length_penalty.
        start: (B, S) tokens to continue (default: BOS).
        stop: a beam also finishes once it has this many tokens of a set.

    Returns:
        The best finished beam of each idea (by length-normalised log-probability) and its log-probability.
    """
    with torch.no_grad():
        k, b, eos = cfg.num_beams, len(cond), decoder.special.eos
        dev = cond.device
        tokens = repeat(_start(decoder, cond, start), "b s -> (b k) s", k=k)
        first = tokens.shape[1]
        cond = cond.repeat(k)
        counts = torch.zeros(b, k, dtype=torch.long, device=dev)
        scores = torch.full((b, k), float("-inf"), device=dev)
        scores[:, 0] = 0.0  # all beams start identical: keep one alive so the first step does not duplicate
        finished = torch.zeros(b, k, dtype=torch.bool, device=dev)
        lengths = torch.zeros(b, k, device=dev)
        cache = None
        for step in range(cfg.max_tokens + 1):
            logits, cache = decoder(tokens, cond, cache=cache)
            logp = logits[:, -1].float().log_softmax(-1)
            if step == cfg.max_tokens:  # out of budget: every beam ends here
                logp = _only_eos(logp, eos)
            logp = logp.view(b, k, -1)
            vocab = logp.shape[-1]
            # A finished beam may only continue with EOS, at no cost, so it keeps its score.
            stay = torch.full_like(logp, float("-inf"))
            stay[..., eos] = 0.0
            logp = torch.where(finished.unsqueeze(-1), stay, logp)
            cand = (scores.unsqueeze(-1) + logp).view(b, k * vocab)
            top, flat = cand.topk(k, dim=-1)
            parent, nxt = flat // vocab, flat % vocab
            rows = (parent + torch.arange(b, device=dev)[:, None] * k).view(-1)
            tokens = torch.cat([tokens[rows], nxt.view(-1, 1)], dim=1)
            _reorder_cache(cache, rows)
            was_finished = finished.gather(1, parent)
            lengths = lengths.gather(1, parent) + (~was_finished).float()
            counts, enough = _stopped(stop, counts.gather(1, parent), nxt)
            finished = was_finished | (nxt == eos) | (enough & ~was_finished)
            scores = top
            if bool(finished.all()):
                break
        norm = scores / lengths.clamp(min=1) ** cfg.length_penalty
        norm = norm.masked_fill(~finished, float("-inf")).where(finished.any(1, keepdim=True), norm)
        best = norm.argmax(-1)
        rows = best + torch.arange(b, device=dev) * k
        return Generated(_strip(tokens[rows, first:], eos, cfg.max_tokens), scores.gather(1, best[:, None]).squeeze(1))


def _reorder_cache(cache, rows: Tensor) -> None:
    """Keep (and reorder) batch rows `rows` of every layer's cached keys/values, in place."""
    for inter in cache.attn_intermediates:
        if inter.cached_kv is not None:
            inter.cached_kv = tuple(kv[rows] for kv in inter.cached_kv)


def _only_eos(logp: Tensor, eos: int) -> Tensor:
    """Allow only EOS, keeping its log-probability so a sequence's score stays its true log-probability."""
    out = torch.full_like(logp, float("-inf"))
    out[:, eos] = logp[:, eos]
    return out


def _strip(tokens: Tensor, eos: int, max_tokens: int) -> list[list[int]]:
    """Cut each row at its first EOS, and at `max_tokens` when the idea never ended."""
    out = []
    for row in tokens.tolist():
        out.append(row[: row.index(eos)] if eos in row else row[:max_tokens])
    return out
