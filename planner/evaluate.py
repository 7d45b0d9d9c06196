"""Teacher-forced planner metrics on held-out code windows, and the unigram / bigram code baselines.

- bits_per_idea: code bits of all ideas (END included) / ideas; bits_per_idea_by_level[l]: level l's share.
- next_idea_top1 / top5 {"level1", "full"}: the true next idea's level-1 code among the planner's k most
  likely; at full depth, the true idea among the k best of a width-5 beam over the depth head.
- unigram_top1 / bigram_top1 {"level1", "full"}: always the most frequent next code (idea) of the training
  codes / the most frequent one after the previous idea's (backing off to the unigram).
Held-out windows are scored without a goal.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from hiertok.errors import UserError
from planner.model import DepthHead, Planner
from planner.shards import CodeCorpus
from planner.windows import Windows

BEAM = 5


@dataclass
class TeacherForcedStats:
    bits_per_idea: float
    bits_per_idea_by_level: dict[str, float]
    next_idea_top1: dict[str, float] = field(default_factory=dict)
    next_idea_top5: dict[str, float] = field(default_factory=dict)
    ideas: int = 0


def depth_beam(head: DepthHead, state: Tensor, k: int = BEAM) -> Tensor:
    """The k most likely next ideas (no END) from each state, by a width-k beam over levels.

    Args:
        head: the planner's depth head.
        state: (N, D) main transformer states.

    Returns:
        (N, k, L) unified ids, best first.
    """
    with torch.no_grad():
        vocab = head.vocab
        n = state.shape[0]
        score = torch.zeros(n, 1, device=state.device)
        ids = torch.zeros(n, 1, 0, dtype=torch.long, device=state.device)
        states = state[:, None]
        for level in range(vocab.levels):
            width = states.shape[1]
            logp = head.logits(states.reshape(n * width, -1), level).float().log_softmax(-1).view(n, width, -1)
            if level == 0:
                logp[..., 0] = float("-inf")  # the next idea, not END
            cand = (score[..., None] + logp).view(n, -1)
            score, flat = cand.topk(min(k, cand.shape[1]), dim=-1)
            parent, choice = flat // logp.shape[-1], flat % logp.shape[-1]
            chosen = choice + vocab.level_slice(level).start
            ids = torch.cat([ids.gather(1, parent[..., None].expand(-1, -1, ids.shape[2])), chosen[..., None]], dim=2)
            states = states.gather(1, parent[..., None].expand(-1, -1, states.shape[2]))
            if level + 1 < vocab.levels:
                states = head.advance(states.reshape(-1, states.shape[2]), level, chosen.reshape(-1)).view(
                    n, -1, states.shape[2]
                )
        return ids


def teacher_forced_bits(
    planner: Planner, windows: Windows, n_windows: int | None = None, batch_size: int = 64, topk: bool = False
) -> TeacherForcedStats:
    """Held-out code bits per idea (and next-idea accuracy when `topk`) over the first `n_windows` windows."""
    with torch.no_grad():
        planner.eval()
        vocab = planner.vocab
        device = next(planner.parameters()).device
        count = len(windows) if n_windows is None else min(n_windows, len(windows))
        if count == 0:
            raise UserError("no held-out windows to evaluate")
        by_level = torch.zeros(vocab.levels, dtype=torch.float64)
        ideas = 0
        hits = Counter()
        for lo in range(0, count, batch_size):
            batch = windows.batch(range(lo, min(lo + batch_size, count)), vocab).to(device)
            batch.goal_on[:] = False
            nll, _ = planner(*batch.args())
            by_level += nll.sum((0, 1)).double().cpu()
            ideas += int(batch.mask.sum())
            if topk:
                states = planner.states(batch.ideas, batch.goal, batch.goal_on, batch.cont)[:, :-1][batch.mask]
                truth = batch.ideas[batch.mask]  # (N, L)
                top = planner.head.logits(states, 0).topk(BEAM, dim=-1).indices  # level-1 choices (END is 0)
                hits["level1_1"] += int((top[:, 0] == truth[:, 0]).sum())
                hits["level1_5"] += int((top == truth[:, :1]).any(1).sum())
                beams = depth_beam(planner.head, states)
                same = (beams == truth[:, None]).all(-1)
                hits["full_1"] += int(same[:, 0].sum())
                hits["full_5"] += int(same.any(1).sum())
        bits = by_level / math.log(2) / ideas
        stats = TeacherForcedStats(float(bits.sum()), {str(i + 1): float(b) for i, b in enumerate(bits)}, ideas=ideas)
        if topk:
            stats.next_idea_top1 = {"level1": hits["level1_1"] / ideas, "full": hits["full_1"] / ideas}
            stats.next_idea_top5 = {"level1": hits["level1_5"] / ideas, "full": hits["full_5"] / ideas}
        return stats


def idea_code_nats(planner: Planner, windows: Windows, batch_size: int = 64) -> tuple[np.ndarray, float]:
    """The planner's nats for each idea's codes, as a receiver decodes them: from the ideas before it only.

    The goal slot stays empty: a document's final idea is its goal in training, and showing it here would
    code every idea with the final one known.

    Args:
        planner: the planner.
        windows: windows over the coded documents.
        batch_size: windows per forward pass.

    Returns:
        nats (n_ideas,) per idea of `windows.corpus`, and the nats of END after each document, summed.
    """
    with torch.no_grad():
        planner.eval()
        device = next(planner.parameters()).device
        per_idea = np.zeros(len(windows.corpus.codes), dtype=np.float64)
        end = 0.0
        for lo in range(0, len(windows), batch_size):
            idx = np.arange(lo, min(lo + batch_size, len(windows)))
            batch = windows.batch(idx, planner.vocab).to(device)
            batch.goal_on[:] = False
            nll, _ = planner(*batch.args())
            per_position = nll.sum(-1).double().cpu().numpy()  # (B, T + 1): the ideas, then END
            for i, (_, first, last) in enumerate(windows.rows[idx]):
                per_idea[first:last] = per_position[i, : last - first]
                end += float(per_position[i, last - first])  # 0 where the window does not end its document
        return per_idea, end


def baseline_top1(train: CodeCorpus, heldout: CodeCorpus) -> tuple[dict[str, float], dict[str, float]]:
    """Unigram and bigram next-idea top-1 accuracy, fitted on `train`, scored on every held-out idea.

    Returns:
        (unigram_top1, bigram_top1), each {"level1": ..., "full": ...}.
    """
    unigram, bigram = {}, {}
    for name, key in (("level1", lambda c: int(c[0])), ("full", lambda c: tuple(c.tolist()))):
        uni: Counter = Counter()
        bi: defaultdict = defaultdict(Counter)
        for d in range(train.num_docs):
            prev = None
            for c in train.doc(d):
                uni[key(c)] += 1
                bi[prev][key(c)] += 1
                prev = key(c)
        top = uni.most_common(1)[0][0] if uni else None
        best = {p: cnt.most_common(1)[0][0] for p, cnt in bi.items()}
        n = uni_hits = bi_hits = 0
        for d in range(heldout.num_docs):
            prev = None
            for c in heldout.doc(d):
                uni_hits += key(c) == top
                bi_hits += key(c) == best.get(prev, top)
                prev, n = key(c), n + 1
        unigram[name], bigram[name] = uni_hits / max(1, n), bi_hits / max(1, n)
    return unigram, bigram
