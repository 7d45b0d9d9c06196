"""Decoding whole stories: every idea of every document from its codes, each reading the story before it.

With a story context (`model.decoder.context` C > 0) an idea's decoder also reads the C ideas before it: by
their tokens where their text is known, else by their codes (`context_codes`) or not at all. No idea waits
for another's tokens within a pass, so a pass decodes all ideas in one batch. Later passes refine (Jacobi
iteration): pass p reads the text every idea got in pass p - 1, so idea t is final after t passes at most.

A later greedy pass does not decode an idea token by token again: the text the idea got in the pass before
is a draft (decoder/drafts.py). One teacher-forced forward pass (all positions at once) says whether it is still
the argmax of every step under its new story; if it is, and the text was acceptable (below), the pass would
write the same text again, so it is kept. Where it is not, the draft is kept up to the first token that
changed, that token is corrected, and the rest of the draft is checked again after it: a changed name costs
two or three forward passes instead of one step per token. This is the verification step of Jacobi /
speculative decoding; the sequential result is unchanged (up to float near-ties, `greedy_from_drafts`).

With `candidates` n > 1, an idea is decoded greedily, then sampled at temperature 0.7 while `accept` has
approved none of its candidates, n times at most; the first approved one is kept (greedy when none is).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from decoder.drafts import greedy_from_drafts
from decoder.generate import GenerationConfig, generate
from hiertok.codes import Codes
from hiertok.data.ideas import pad_ideas
from hiertok.errors import UserError

if TYPE_CHECKING:
    from decoder.model import Condition
    from hiertok.autoencoder import IdeaAutoencoder
    from hiertok.tokenizer import IdeaTokenizer

# Which decoded candidates are acceptable: (rows (R,), candidates [n][R] token ids) -> (n, R) bool. It must
# depend only on each row and its candidate's text (a kept text is then still acceptable in a later pass).
Accept = Callable[[torch.Tensor, list[list[list[int]]]], torch.Tensor]


@dataclasses.dataclass
class StoryTexts:
    """The flat ideas being decoded: their code vectors, their earlier ideas and the texts so far."""

    vectors: torch.Tensor  # (N, D)
    context: torch.Tensor  # (N, C) rows of the earlier ideas, -1 where none
    texts: list[list[int] | None]
    acceptable: torch.Tensor  # (N,) the kept text was approved (by `accept`, or no check asked)
    states: torch.Tensor | None = None  # (N, state_dim) each idea's state, for a decoder that reads one

    def condition(
        self,
        model: IdeaAutoencoder,
        rows: torch.Tensor,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        has_text: torch.Tensor,
    ) -> Condition:
        """The decoder's Condition for `rows` (R,), reading the story's current texts (`batch()`)."""
        ctx = self.context[rows]
        state = None if self.states is None else self.states[rows]
        return model.decoder_condition(rows, ctx, self.vectors, tokens, mask, has_text[ctx.clamp(min=0)], state=state)

    def batch(self, pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, T) tokens and mask of every text so far, and (N,) which ideas have one."""
        has_text = torch.tensor([t is not None for t in self.texts], dtype=torch.bool, device=device)
        tokens, mask = pad_ideas([t or [] for t in self.texts], pad)
        return tokens.to(device), mask.to(device), has_text


def decode_stories(
    tok: IdeaTokenizer,
    codes: Codes,
    levels: int | None = None,
    generation: GenerationConfig | None = None,
    batch_size: int = 512,
    seed: int = 0,
    known: Sequence[Sequence[Sequence[int]]] | None = None,
    passes: int = 1,
    candidates: int = 1,
    accept: Accept | None = None,
    verify: bool = True,
    states: torch.Tensor | None = None,
) -> tuple[list[list[list[int]]], int]:
    """Token ids of every idea, decoded from its first `levels` codes (see the module docstring).

    Args:
        tok: the idea tokenizer.
        codes: codes of documents; only the first `levels` levels are read.
        levels: prefix depth k (None: every level the codes have).
        generation: decoding settings (default: the tokenizer's, greedy).
        batch_size: ideas per decoding batch.
        seed: seed for sampling (each pass draws the same numbers, so that a pass can repeat the last).
        known: per document, the token ids of its first ideas whose text is known (a prompt); they are
            returned as given, not decoded.
        passes: decoding passes at most (0: until nothing changes, the same result as decoding the ideas one
            after another); 1 without a story context.
        candidates: decodings per idea, the first `accept` approves kept.
        accept: which candidates are acceptable (None, or candidates 1: the greedy one, unasked).
        verify: decode a later greedy pass from the texts before as drafts (False: decode every idea whose story
            changed token by token; the same texts, slower: for benchmarks and tests).
        states: (N, state_dim) each idea's state in `Codes.flat` order, for a decoder that reads one (None: none).

    Returns:
        Per document, per idea, token ids; and the number of decoding passes run.
    """
    with torch.no_grad():
        if codes.levels > tok.levels:
            raise UserError(f"codes have {codes.levels} levels, this tokenizer has {tok.levels}")
        k = codes.levels if levels is None else levels
        if not 1 <= k <= codes.levels:
            raise UserError(f"levels must be in 1..{codes.levels}, got {k}")
        if passes < 0:
            raise UserError(f"passes must be >= 0, got {passes}")
        gen = generation or tok.cfg.generation
        model, device = tok.model.eval(), tok.device
        q = model.quantizer
        flat = codes.ids[..., :k][codes.mask].to(device)
        if states is not None and len(states) != len(flat):
            raise UserError(f"states has {len(states)} rows for {len(flat)} ideas")
        vectors = q.decode_indices(flat) if len(flat) else torch.zeros((0, q.dim), device=device)
        context = grid_previous(codes.mask, model.decoder.cfg.context).to(device)
        ok = torch.ones(len(flat), dtype=torch.bool, device=device)
        story = StoryTexts(vectors, context, [None] * len(flat), ok, None if states is None else states.to(device))
        given = known_mask(codes, known)  # (N,) ideas whose text is known
        known_ideas = iter(list(ids) for doc in (known or []) for ids in doc)
        for i in given.nonzero().squeeze(1).tolist():
            story.texts[i] = next(known_ideas)
        todo = (~given).nonzero().squeeze(1).to(device)
        most = int(codes.mask.sum(1).max()) if codes.num_docs else 1
        limit = 1 if not model.decoder.cfg.context else min(passes or most, most)
        # Only greedy decoding can start from drafts; a parallel decoder writes an idea in one forward pass anyway.
        greedy = gen.temperature == 0 and gen.num_beams == 1 and not model.decoder.cfg.parallel
        done, dirty = 0, todo  # a pass decodes only the ideas whose story changed in the pass before
        while len(dirty) and done < limit:
            drafted = None  # the greedy texts of a later pass, decoded from the texts before as drafts
            if done and greedy and verify:
                drafted = redecode_greedy(tok, story, dirty, gen, batch_size)
                same = torch.tensor([t == story.texts[i] for t, i in zip(drafted, dirty.tolist())], device=device)
                keep = same & story.acceptable[dirty]  # the pass would write the same text again
                drafted = [t for t, kept in zip(drafted, keep.tolist()) if not kept]
                dirty = dirty[~keep]
                if not len(dirty):
                    break
            again, ok = _decode_pass(tok, story, dirty, gen, batch_size, seed, candidates, accept, drafted)
            done += 1
            changed = torch.zeros(len(story.texts), dtype=torch.bool, device=device)
            for i, ids in zip(dirty.tolist(), again):
                changed[i] = story.texts[i] != ids
                story.texts[i] = ids
            story.acceptable[dirty] = ok
            ctx = context[todo]
            dirty = todo[((ctx >= 0) & changed[ctx.clamp(min=0)]).any(1)]
        out, pos = [], 0
        for n in codes.mask.sum(1).tolist():
            out.append([list(t) for t in story.texts[pos : pos + n]])
            pos += n
        return out, done


def redecode_greedy(
    tok: IdeaTokenizer, story: StoryTexts, rows: torch.Tensor, gen: GenerationConfig, batch_size: int
) -> list[list[int]]:
    """Greedy texts of `rows` reading the story's current texts, each decoded from its own text so far as a draft
    (`decoder.drafts.greedy_from_drafts`): a text that is still greedy costs one teacher-forced forward pass.

    Args:
        tok: the idea tokenizer.
        story: the ideas being decoded; every row of `rows` has a text.
        rows: (R,) rows to decode.
        gen: greedy decoding settings (its max_tokens bounds a text).
        batch_size: rows per forward pass.

    Returns:
        Per row, its greedy token ids.
    """
    model = tok.model
    tokens, mask, has_text = story.batch(tok.bpe.pad_id, tok.device)
    out: list[list[int]] = []
    for start in range(0, len(rows), batch_size):
        part = rows[start : start + batch_size]
        cond = story.condition(model, part, tokens, mask, has_text)
        drafts = [story.texts[i] or [] for i in part.tolist()]
        texts, _ = greedy_from_drafts(model.decoder, cond, drafts, gen.max_tokens, tok.bpe.pad_id)
        out.extend(texts)
    return out


def _decode_pass(
    tok: IdeaTokenizer,
    story: StoryTexts,
    rows: torch.Tensor,
    gen: GenerationConfig,
    batch_size: int,
    seed: int,
    candidates: int,
    accept: Accept | None,
    greedy: list[list[int]] | None = None,
) -> tuple[list[list[int]], torch.Tensor]:
    """Decode `rows` once, each reading the text its earlier ideas have so far: greedily (or take `greedy`, the
    rows' greedy texts already decoded), then (up to `candidates` - 1 times) by sampling the rows `accept` has
    not approved yet; the first acceptable text is kept, greedy where none is. Returns the texts and (R,)
    whether each is acceptable."""
    model = tok.model
    tokens, mask, has_text = story.batch(tok.bpe.pad_id, tok.device)
    generator = torch.Generator(device=tok.device).manual_seed(seed)

    def decode(part_rows: torch.Tensor, settings: GenerationConfig) -> list[list[int]]:
        out: list[list[int]] = []
        for start in range(0, len(part_rows), batch_size):
            part = part_rows[start : start + batch_size]
            cond = story.condition(model, part, tokens, mask, has_text)
            out.extend(generate(model.decoder, cond, settings, generator=generator).tokens)
        return out

    texts = decode(rows, gen) if greedy is None else greedy
    if accept is None or candidates <= 1:  # one candidate is kept whatever `accept` says: do not ask
        return texts, torch.ones(len(rows), dtype=torch.bool, device=rows.device)
    ok = accept(rows.cpu(), [texts])[0].to(rows.device)
    texts = list(texts)  # accept may keep what it was shown
    sampling = dataclasses.replace(gen, temperature=0.7, num_beams=1)
    for _ in range(candidates - 1):
        left = (~ok).nonzero().squeeze(1)
        if not len(left):
            break  # only the ideas no candidate satisfied yet pay for another one
        sampled = decode(rows[left], sampling)
        good = accept(rows[left].cpu(), [sampled])[0].to(rows.device)
        for j in good.nonzero().squeeze(1).tolist():
            texts[int(left[j])] = sampled[j]
        ok[left] = good
    return texts, ok


def known_mask(codes: Codes, known: Sequence[Sequence[Sequence[int]]] | None) -> torch.Tensor:
    """(N,) True at the ideas of `codes` (in `Codes.flat` order) whose text `known` gives."""
    if known is None:
        return torch.zeros(int(codes.mask.sum()), dtype=torch.bool)
    counts = codes.mask.sum(1)
    if len(known) != codes.num_docs or any(len(d) > int(n) for d, n in zip(known, counts)):
        raise UserError("known texts must give at most as many ideas per document as the codes have")
    if any(len(ids) == 0 for doc in known for ids in doc):
        raise UserError("a known idea has no tokens")
    lengths = torch.tensor([len(d) for d in known], dtype=torch.long)
    grid = torch.arange(codes.mask.shape[1])[None, :] < lengths[:, None]
    return grid[codes.mask]


def grid_previous(mask: torch.Tensor, count: int) -> torch.Tensor:
    """The earlier ideas of each existing idea of a (docs, ideas) grid, as rows of `mask`'s flat order.

    Args:
        mask: (docs, ideas) True where an idea exists (each document's ideas come first).
        count: how many earlier ideas.

    Returns:
        (N, count) rows of the previous 1..count ideas in the same document, nearest first, -1 where none.
    """
    grid = torch.full(mask.shape, -1, dtype=torch.long)
    grid[mask] = torch.arange(int(mask.sum()))
    width = grid.shape[1]
    cols = [torch.nn.functional.pad(grid, (d, 0), value=-1)[:, :width] for d in range(1, count + 1)]
    return torch.stack(cols, -1)[mask] if cols else torch.zeros((int(mask.sum()), 0), dtype=torch.long)
