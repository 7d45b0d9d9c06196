"""The planner: a causal transformer over a document's ideas, with a depth head that emits each idea's levels.

Sequence (one position per idea, rotary positions):

    [goal | no-goal]  [start | continue]  idea_1  idea_2 ... idea_n
                       ^ predicts idea_1   ^ predicts idea_2     ^ predicts END (or idea_n+1)

An idea enters as the sum of its L code embeddings (RQ-Transformer style), so a 16-idea plan costs 16
sequential steps of the main transformer, not 16 * L. The depth head then emits the next idea's levels
coarse to fine, each conditioned on the main state and the levels already chosen.

The depth head is a residual MLP recurrence written by hand rather than a second x-transformers stack:
a level step is then a few small matrix products (~0.1 ms here) instead of a full transformer call
(a full stack costs milliseconds per call on a CPU), and the planner's speed is decided by sequential steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn
from x_transformers import ContinuousTransformerWrapper
from x_transformers.x_transformers import LayerIntermediates

from hiertok.layers import rotary_layers
from planner.vocab import CodeVocab


@dataclass
class PlannerModelConfig:
    """Sizes of the planner (defaults: the tiny setting)."""

    dim: int = 128
    depth: int = 3
    heads: int = 4
    dim_head: int = 64  # width of one attention head
    depth_head_blocks: int = 2  # residual MLP blocks per level step
    dropout: float = 0.0
    tie_embeddings: bool = True  # one code embedding table for the input, the depth head and its output
    # > 0: goals at a given distance. Training windows are cut at a goal 1..N ideas ahead, and every position is told
    # how many ideas remain until the goal (N or more: N), so that a video's planner can be asked for frame N to be
    # a given frame. 0: the goal is the document's final idea, at a distance nobody states (text).
    goal_distance: int = 0


def goal_steps_left(goal_at: Tensor, first: int, count: int) -> Tensor:
    """How far the idea each input predicts is from the goal, as `Planner.context` reads it.

    Input j (0 the start slot, j the j-th idea) predicts idea j (0-based); it is told goal_at - j + 1 (1: the idea it
    predicts is the goal), and 0 past the goal or where there is none.

    Args:
        goal_at: (B,) the goal's index among the ideas (-1: no goal).
        first, count: the inputs first .. first + count - 1.

    Returns:
        (B, count) long distances.
    """
    j = torch.arange(first, first + count, device=goal_at.device)
    left = goal_at[:, None] - j[None] + 1
    return torch.where((goal_at[:, None] >= 0) & (left > 0), left, 0)


class DepthHead(nn.Module):
    """Emits one idea's levels coarse to fine from the main transformer's state.

    state_0 = h; logits_l = out(norm(state_l + level_l)) restricted to level l's slice of the vocabulary;
    state_{l+1} = state_l + MLPs(state_l + level_l + embed(code_l)).
    """

    def __init__(self, dim: int, vocab: CodeVocab, blocks: int):
        super().__init__()
        self.vocab = vocab
        self.level_emb = nn.Parameter(torch.zeros(vocab.levels, dim))
        self.code_emb = nn.Embedding(vocab.size, dim)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
            for _ in range(blocks)
        )
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, vocab.size)

    def out_slices(self) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        """The output weights and biases split into every level's slice.

        Split once and reused for all levels: slicing the table per level would make each level's backward
        build a zero-filled gradient of the whole (tied) table, which took a quarter of a training step.
        """
        sizes = self.vocab.slice_sizes
        return self.out.weight.split(sizes), self.out.bias.split(sizes)

    def logits(self, state: Tensor, level: int, slices: tuple | None = None) -> Tensor:
        """(N, D) state -> (N, n_level) logits over `vocab.level_slice(level)` (END first at level 0).

        `slices`: `out_slices()`, when the caller computes the logits of several levels.
        """
        weights, biases = slices or self.out_slices()
        return F.linear(self.norm(state + self.level_emb[level]), weights[level], biases[level])

    def advance(self, state: Tensor, level: int, ids: Tensor) -> Tensor:
        """State after choosing unified ids `ids` (N,) at `level`."""
        return self._advance(state, level, self.code_emb(ids))

    def _advance(self, state: Tensor, level: int, chosen: Tensor) -> Tensor:
        """State after choosing codes whose embeddings are `chosen` (N, D) at `level`."""
        x = state + self.level_emb[level] + chosen
        for block in self.blocks:
            x = x + block(x)
        return x

    def nll(self, state: Tensor, targets: Tensor) -> Tensor:
        """Teacher-forced negative log-likelihood of each level.

        Args:
            state: (N, D) main transformer states.
            targets: (N, L) unified ids; -1 where a level has no target (after END, padding).

        Returns:
            (N, L) nats, 0 where there is no target.
        """
        out = []
        slices = self.out_slices()
        chosen = self.code_emb(targets.clamp(min=0))  # (N, L, D) in one lookup, one gradient of the table
        for level in range(self.vocab.levels):
            tgt = targets[:, level]
            local = (tgt - self.vocab.level_slice(level).start).clamp(min=0)
            nll = F.cross_entropy(self.logits(state, level, slices).float(), local, reduction="none")
            out.append(torch.where(tgt >= 0, nll, 0.0))
            if level + 1 < self.vocab.levels:
                state = self._advance(state, level, chosen[:, level])
        return torch.stack(out, dim=1)


class Planner(nn.Module):
    """Next-idea model over multi-level codes, with an optional goal (the document's final idea)."""

    def __init__(self, cfg: PlannerModelConfig, vocab: CodeVocab):
        super().__init__()
        self.cfg, self.vocab = cfg, vocab
        self.code_emb = nn.Embedding(vocab.size, cfg.dim)
        self.idea_norm = nn.LayerNorm(cfg.dim)
        self.start_emb = nn.Parameter(torch.randn(2, cfg.dim) * 0.02)  # [document start, continuation]
        self.goal_tag = nn.Parameter(torch.randn(cfg.dim) * 0.02)  # marks the goal slot's idea as a goal
        self.no_goal = nn.Parameter(torch.randn(cfg.dim) * 0.02)
        # row 0: no goal, or past it; row d: the idea this position predicts is d - 1 ideas before the goal
        self.goal_left = nn.Embedding(cfg.goal_distance + 1, cfg.dim) if cfg.goal_distance else None
        if self.goal_left is not None:
            nn.init.normal_(self.goal_left.weight, std=0.02)
        self.net = ContinuousTransformerWrapper(
            dim_in=None,
            dim_out=None,
            max_seq_len=0,
            use_abs_pos_emb=False,
            emb_dropout=cfg.dropout,
            attn_layers=rotary_layers(
                causal=True, dim=cfg.dim, depth=cfg.depth, heads=cfg.heads, dropout=cfg.dropout, dim_head=cfg.dim_head
            ),
        )
        self.head = DepthHead(cfg.dim, vocab, cfg.depth_head_blocks)
        if cfg.tie_embeddings:  # the code tables are most of the parameters (16 levels x 1000 codes x dim each)
            nn.init.normal_(self.code_emb.weight, std=0.02)
            self.head.code_emb = self.code_emb
            self.head.out.weight = self.code_emb.weight

    def embed_ideas(self, ids: Tensor) -> Tensor:
        """(..., L) unified ids -> (..., D) idea embeddings."""
        return self.idea_norm(self.code_emb(ids).sum(-2))

    def context(
        self,
        ideas: Tensor,
        goal: Tensor | None,
        goal_on: Tensor | None,
        cont: Tensor | None,
        left: Tensor | None = None,
    ) -> Tensor:
        """Input embeddings [goal slot, start slot, ideas...].

        Args:
            ideas: (B, T, L) unified ids (T may be 0).
            goal: (B, L) unified ids of the goal idea, or None for no goal.
            goal_on: (B,) bool, False where the goal is dropped (None: all on).
            cont: (B,) bool, True where the window continues a document (None: all document starts).
            left: (B, T + 1) with `goal_distance`: for the start slot and each idea, the distance (1..N, 0: none)
                of the idea it predicts from the goal (`goal_steps_left`); None: none.

        Returns:
            (B, T + 2, D).
        """
        b = ideas.shape[0]
        no_goal = repeat(self.no_goal, "d -> b d", b=b)
        if goal is None:
            goal_slot = no_goal
        else:
            goal_slot = self.embed_ideas(goal) + self.goal_tag
            if goal_on is not None:
                goal_slot = torch.where(goal_on[:, None], goal_slot, no_goal)
        kind = cont.long() if cont is not None else torch.zeros(b, dtype=torch.long, device=ideas.device)
        slots = torch.stack([goal_slot, self.start_emb[kind]], dim=1)
        x = torch.cat([slots, self.embed_ideas(ideas)], dim=1)
        return x if self.goal_left is None or left is None else x + F.pad(self.steps_left(left), (0, 0, 1, 0))

    def steps_left(self, left: Tensor) -> Tensor:
        """(...) distances to the goal (`context`'s `left`) -> (..., D) the embeddings added to the inputs; a
        distance past N is N."""
        return self.goal_left(left.clamp(0, self.cfg.goal_distance))

    def hidden(self, x: Tensor, cache: LayerIntermediates | None = None) -> tuple[Tensor, LayerIntermediates]:
        """Main transformer states for new inputs `x` (B, S, D), continuing `cache` when given."""
        return self.net(
            x, return_embeddings=True, return_intermediates=True, cache=cache, input_not_include_cache=cache is not None
        )

    def states(
        self,
        ideas: Tensor,
        goal: Tensor | None,
        goal_on: Tensor | None,
        cont: Tensor | None,
        left: Tensor | None = None,
    ) -> Tensor:
        """(B, T + 1, D) states that predict idea 1..T and what follows idea T (arguments as `context`)."""
        h, _ = self.hidden(self.context(ideas, goal, goal_on, cont, left))
        return h[:, 1:]

    def forward(
        self,
        ideas: Tensor,
        mask: Tensor,
        ends: Tensor,
        goal: Tensor,
        goal_on: Tensor,
        cont: Tensor,
        left: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Teacher-forced code negative log-likelihood of a batch of windows.

        Args:
            ideas: (B, T, L) unified ids, right-padded.
            mask: (B, T) True at real ideas.
            ends: (B,) True where the document ends after the window's last idea (END is a target).
            goal: (B, L) unified ids of each document's final idea.
            goal_on: (B,) whether the goal is shown.
            cont: (B,) whether the window starts inside its document.
            left: (B, T + 1) distances to the goal (`context`), or None.

        Returns:
            nll (B, T + 1, L) nats per predicted code (0 where nothing is predicted), and its mask.
        """
        b, t, levels = ideas.shape
        h = self.states(ideas, goal, goal_on, cont, left)
        targets = torch.full((b, t + 1, levels), -1, dtype=torch.long, device=ideas.device)
        targets[:, :t] = torch.where(mask[..., None], ideas, -1)
        lengths = mask.sum(1)
        end_rows = ends.nonzero().squeeze(1)
        targets[end_rows, lengths[end_rows], 0] = 0  # END (id 0) after the last idea
        flat_t = rearrange(targets, "b t l -> (b t) l")
        keep = (flat_t[:, 0] >= 0).nonzero().squeeze(1)
        nll = torch.zeros(b * (t + 1), levels, device=ideas.device)
        nll[keep] = self.head.nll(rearrange(h, "b t d -> (b t) d")[keep], flat_t[keep])
        return rearrange(nll, "(b t) l -> b t l", b=b), targets >= 0
