"""Greedy decoding that starts from a draft of each row's text: verify, keep, correct, look the rest up.

A later decoding pass of a story (hiertok/story_decoding.py) writes an idea again because an earlier idea's
text changed; most of the time only a name or a colour differs from what the idea had. Generating it again
token by token pays one decoder step per token. Here the idea's previous text is a draft, checked as
speculative decoding checks one: one teacher-forced forward pass scores every position at once; the draft is
kept up to its first position that is not the argmax, that position gets the argmax, and the draft's text
after the corrected token is found again by looking up the last tokens written in the draft (prompt-lookup
decoding, Saxena 2023; where they are not in it, the draft after the replaced token), then checked in the next
forward pass. A draft that is already greedy costs one forward pass; a changed name, two or three; a row whose
draft has nothing left to offer gains one token per pass, as plain decoding does.

The result is greedy decoding (the argmax of every step under teacher forcing, which is what the KV-cached
steps compute up to float rounding: a near-tie may go the other way). Written here because x-transformers
has no speculative decoding with given drafts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from decoder.model import Condition, IdeaDecoder
from hiertok.data.ideas import pad_ideas


def lookup(written: Sequence[int], draft: Sequence[int], ngram: int = 2) -> list[int]:
    """The draft's continuation after the last tokens written, where they occur in the draft.

    The longest suffix of `written` (up to `ngram` tokens) that occurs in `draft` picks the match; of several
    matches, the one ending nearest to where `written` ends (the draft's text is mostly aligned with it).

    Args:
        written: tokens decoded so far.
        draft: the row's draft.
        ngram: the longest suffix tried.

    Returns:
        The draft's tokens after the match ([] when no suffix occurs in the draft).
    """
    for n in range(min(ngram, len(written)), 0, -1):
        tail = list(written[-n:])
        ends = [i + n for i in range(len(draft) - n + 1) if list(draft[i : i + n]) == tail]
        if ends:
            end = min(ends, key=lambda e: (abs(e - len(written)), e))
            return list(draft[end:])
    return []


def greedy_from_drafts(
    decoder: IdeaDecoder, cond: Condition, drafts: Sequence[Sequence[int]], max_tokens: int, pad: int
) -> tuple[list[list[int]], int]:
    """Greedy decoding of every row, verified against and completed from its draft (module docstring).

    Args:
        decoder: the idea decoder (eval mode is the caller's business).
        cond: what each row decodes from.
        drafts: per row, a text to start from (token ids, no BOS/EOS).
        max_tokens: tokens per row at most; a row that fills them ends there, as `generate` ends it.
        pad: the padding id.

    Returns:
        Per row, the greedy text; and the number of forward passes run.
    """
    with torch.no_grad():
        rows = len(drafts)
        done: list[list[int] | None] = [None] * rows
        written: list[list[int]] = [[] for _ in range(rows)]  # verified (or corrected) tokens
        proposal = [list(d)[:max_tokens] for d in drafts]  # what the next pass checks after `written`
        active = list(range(rows))
        forwards = 0
        while active:
            seqs = [(written[r] + proposal[r])[:max_tokens] for r in active]
            tokens, mask = pad_ideas(seqs, pad)
            tokens, mask = tokens.to(cond.device), mask.to(cond.device)
            inp, target, _ = decoder.teacher_forcing(tokens, mask)
            index = torch.tensor(active, device=cond.device)
            predicted = decoder.score(inp, cond.rows(index), target).predicted.tolist()
            target = target.tolist()
            forwards += 1
            still = []
            for r, seq, pred, tgt in zip(active, seqs, predicted, target):
                start = len(written[r])
                last = min(len(seq), max_tokens - 1)  # positions checked: up to EOS, none at the budget
                bad = next((j for j in range(start, last + 1) if pred[j] != tgt[j]), None)
                if bad is None:  # every checked position is the argmax: the text (and its EOS) stands
                    done[r] = seq
                    continue
                nxt = pred[bad]
                if nxt == decoder.special.eos:
                    done[r] = seq[:bad]
                    continue
                written[r] = seq[:bad] + [nxt]
                if len(written[r]) >= max_tokens:
                    done[r] = written[r][:max_tokens]
                    continue
                # Where the written tokens are not in the draft (a new name), the draft had one token replaced.
                proposal[r] = lookup(written[r], drafts[r]) or seq[bad + 1 :]
                still.append(r)
            active = still
        return [list(t) for t in done], forwards
