"""Multi-level quantizer: one idea vector -> L discrete codes, coarse to fine; any prefix 1..k decodes.

Two hierarchy modes over vector-quantize-pytorch's quantizers (FSQ, VQ, LFQ):

- `matryoshka`: the idea vector is L slices; level i quantizes slice i with its own codebook. A prefix
  of k levels keeps slices 1..k and replaces the rest by a learned "absent" vector per level. Nested
  dropout (a random prefix per sample) teaches the decoder to read any prefix, so the first slices
  carry the gist. Per-level codebook sizes may differ.
- `residual`: the library's ResidualFSQ / ResidualVQ / ResidualLFQ; level i quantizes what levels
  < i left. Its quantize dropout (one cut-off per batch) trains the prefixes; one codebook size.

The quantizer math runs in fp32 even under autocast (under bf16, most vectors' finer FSQ indices differ from fp32's).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import Tensor, nn
from vector_quantize_pytorch import FSQ, LFQ, ResidualFSQ, ResidualLFQ, ResidualVQ, VectorQuantize

from hiertok.errors import UserError

# FSQ levels per nominal codebook size (FSQ paper, Table 3, plus small sizes); the real size is the product.
FSQ_LEVELS: dict[int, list[int]] = {
    16: [4, 4],
    64: [4, 4, 4],
    256: [8, 6, 5],
    1000: [8, 5, 5, 5],
    1024: [8, 5, 5, 5],
    4096: [7, 5, 5, 5, 5],
    16384: [8, 8, 8, 6, 5],
    65536: [8, 8, 8, 5, 5, 5],
}
KINDS = ("fsq", "vq", "lfq")
HIERARCHIES = ("matryoshka", "residual")
PREFIX_DISTS = ("uniform", "geometric", "mixed")


@dataclass
class QuantizerConfig:
    """The code layout: how many levels, how large each codebook, which quantizer and hierarchy."""

    kind: str = "fsq"  # fsq | vq | lfq
    hierarchy: str = "matryoshka"  # matryoshka | residual
    levels: int = 16
    # Codes per level, coarse to fine; the last entry repeats for the remaining levels. A small first
    # codebook keeps level 1 a coarse gist that a planner can predict (experiments/README.md: "Tiny").
    codebook_sizes: list[int] = field(default_factory=lambda: [256, 1000])
    # FSQ's values per dimension, the same for every level, instead of the table's for each codebook size (the
    # codebook sizes must then be their product): e.g. [16, 16, 4], 1,024 codes whose first two dimensions can
    # each hold a coordinate of a 16-pixel frame. Empty: FSQ_LEVELS of each codebook size.
    fsq_levels: list[int] = field(default_factory=list)
    level_dim: int = 0  # matryoshka slice width per level; 0 = the quantizer's natural width
    residual_dim: int = 64  # idea-vector width in residual mode
    level_dropout: float = 0.3  # fraction of training samples (matryoshka) / batches (residual) cut to a prefix
    # How a cut sample's prefix length k in 1..L-1 is drawn (matryoshka): uniform; geometric, P(k) ~ 2^-k
    # as in nested dropout (Rippel et al. 2014), which trains the coarse levels to carry the gist; or mixed,
    # the average of the two, which also keeps training the middle prefixes.
    prefix_dist: str = "geometric"
    # The depth a planner will plan (planner `levels`): a further `plan_levels_dropout` of training samples keep
    # exactly that many levels (matryoshka), so that the decoder learns the prefix generation decodes from, with
    # the story read for what those levels leave open. 0: off.
    plan_levels: int = 0
    plan_levels_dropout: float = 0.0
    vq_decay: float = 0.99
    vq_dead_code_threshold: float = 2.0  # VQ codes used fewer times (EMA) are re-seeded from the batch
    commitment_weight: float = 0.25  # VQ commitment loss weight
    lfq_entropy_weight: float = 0.1


@dataclass
class QuantizerOutput:
    """What the quantizer returns for a batch of idea vectors.

    quantized: (B, D) the vector the decoder reads (straight-through gradients to the encoder).
    indices: (B, L) int64 codes, coarse to fine.
    aux_loss: scalar auxiliary loss (VQ commitment, LFQ entropy; 0 for FSQ).
    kept_levels: (B,) how many levels each sample kept (level dropout); L without dropout.
    """

    quantized: Tensor
    indices: Tensor
    aux_loss: Tensor
    kept_levels: Tensor

    def at_rows(self, rows: Tensor, n: int) -> QuantizerOutput:
        """These outputs placed at `rows` of an n-row batch; the other rows get a zero vector, codes -1 and no
        kept levels (rows that were not quantized)."""
        return QuantizerOutput(
            self.quantized.new_zeros((n, self.quantized.shape[1])).index_copy(0, rows, self.quantized),
            self.indices.new_full((n, self.indices.shape[1]), -1).index_copy(0, rows, self.indices),
            self.aux_loss,
            self.kept_levels.new_zeros(n).index_copy(0, rows, self.kept_levels),
        )


def validate(cfg: QuantizerConfig) -> list[int]:
    """Check a quantizer config and return the nominal codebook size of each level.

    Raises:
        UserError: with a one-line explanation of what is wrong.
    """
    if cfg.kind not in KINDS:
        raise UserError(f"quantizer.kind must be one of {KINDS}, got {cfg.kind!r}")
    if cfg.hierarchy not in HIERARCHIES:
        raise UserError(f"quantizer.hierarchy must be one of {HIERARCHIES}, got {cfg.hierarchy!r}")
    if cfg.levels < 1:
        raise UserError(f"quantizer.levels must be >= 1, got {cfg.levels}")
    sizes = list(cfg.codebook_sizes)
    if not sizes or len(sizes) > cfg.levels:
        raise UserError(f"quantizer.codebook_sizes has {len(sizes)} entries for {cfg.levels} levels")
    sizes += sizes[-1:] * (cfg.levels - len(sizes))  # the last size repeats for the remaining levels
    if cfg.hierarchy == "residual" and len(set(sizes)) > 1:
        raise UserError("residual hierarchy shares one codebook size across levels; give a single size")
    if cfg.fsq_levels:
        if cfg.kind != "fsq" or min(cfg.fsq_levels) < 2:
            raise UserError(f"quantizer.fsq_levels needs kind fsq and values >= 2, got {list(cfg.fsq_levels)}")
        if set(sizes) != {math.prod(cfg.fsq_levels)}:
            raise UserError(
                f"quantizer.codebook_sizes must be [{math.prod(cfg.fsq_levels)}] (the product of quantizer.fsq_levels "
                f"{list(cfg.fsq_levels)}), got {list(cfg.codebook_sizes)}"
            )
    for s in sizes:
        if cfg.kind == "fsq" and not cfg.fsq_levels and s not in FSQ_LEVELS:
            raise UserError(f"FSQ codebook size {s} not supported; choose one of {sorted(FSQ_LEVELS)}")
        if cfg.kind == "lfq" and (s < 2 or s & (s - 1)):
            raise UserError(f"LFQ codebook size must be a power of 2, got {s}")
        if cfg.kind == "vq" and s < 2:
            raise UserError(f"VQ codebook size must be >= 2, got {s}")
    if not 0.0 <= cfg.level_dropout <= 1.0:
        raise UserError(f"quantizer.level_dropout must be in [0, 1], got {cfg.level_dropout}")
    if cfg.prefix_dist not in PREFIX_DISTS:
        raise UserError(f"quantizer.prefix_dist must be one of {PREFIX_DISTS}, got {cfg.prefix_dist!r}")
    if cfg.prefix_dist != "uniform" and cfg.hierarchy == "residual":
        raise UserError("quantizer.prefix_dist applies to matryoshka only (residual uses the library's dropout)")
    if cfg.plan_levels and (cfg.hierarchy != "matryoshka" or not 1 <= cfg.plan_levels < cfg.levels):
        raise UserError(f"quantizer.plan_levels must be 0 or in 1..{cfg.levels - 1}, with the matryoshka hierarchy")
    if not 0.0 <= cfg.plan_levels_dropout <= 1.0 - cfg.level_dropout:
        raise UserError("quantizer.plan_levels_dropout must be in [0, 1 - level_dropout]")
    return sizes


def actual_codebook_size(kind: str, nominal: int, fsq_levels: Sequence[int] = ()) -> int:
    """FSQ's implicit codebook is the product of its levels (1000 for a nominal 1024)."""
    return math.prod(fsq_levels_of(nominal, fsq_levels)) if kind == "fsq" else nominal


def fsq_levels_of(size: int, fsq_levels: Sequence[int] = ()) -> list[int]:
    """FSQ's values per dimension for a level of nominal codebook size `size`: `fsq_levels` (the config's
    `quantizer.fsq_levels`) when given, else the table's."""
    return list(fsq_levels) or FSQ_LEVELS[size]


def _natural_dim(kind: str, size: int, fsq_levels: Sequence[int] = ()) -> int:
    if kind == "fsq":
        return len(fsq_levels_of(size, fsq_levels))
    if kind == "lfq":
        return int(math.log2(size))
    return 16


class MultiLevelQuantizer(nn.Module):
    """Quantize idea vectors `(B, D)` into `L` codes per idea; decode any prefix of codes back."""

    def __init__(self, cfg: QuantizerConfig):
        super().__init__()
        nominal = validate(cfg)
        self.cfg = cfg
        self.levels = cfg.levels
        self.codebook_sizes = [actual_codebook_size(cfg.kind, s, cfg.fsq_levels) for s in nominal]
        if cfg.hierarchy == "matryoshka":
            self.level_dims = [cfg.level_dim or _natural_dim(cfg.kind, s, cfg.fsq_levels) for s in nominal]
            self.dim = sum(self.level_dims)
            self.quantizers = nn.ModuleList(self._single(d, s) for d, s in zip(self.level_dims, nominal))
            # Equal FSQ levels run as one FSQ with L codebooks: same math, one call instead of L.
            self.fused = None
            if cfg.kind == "fsq" and len(set(nominal)) == 1 and not cfg.level_dim:
                self.fused = FSQ(
                    levels=fsq_levels_of(nominal[0], cfg.fsq_levels),
                    num_codebooks=cfg.levels,
                    keep_num_codebooks_dim=True,
                )
            # What a decoder sees for a level it was not given (prefix decoding, nested dropout).
            self.absent = nn.Parameter(torch.zeros(self.dim))
        else:
            self.dim = cfg.residual_dim
            self.residual = self._residual(nominal[0])

    # -- construction -------------------------------------------------------------------------
    def _single(self, dim: int, size: int) -> nn.Module:
        c = self.cfg
        if c.kind == "fsq":
            return FSQ(levels=fsq_levels_of(size, c.fsq_levels), dim=dim)
        if c.kind == "lfq":
            return LFQ(dim=dim, codebook_size=size, entropy_loss_weight=c.lfq_entropy_weight)
        return VectorQuantize(
            dim=dim,
            codebook_size=size,
            kmeans_init=True,
            decay=c.vq_decay,
            threshold_ema_dead_code=c.vq_dead_code_threshold,
            commitment_weight=c.commitment_weight,
        )

    def _residual(self, size: int) -> nn.Module:
        c = self.cfg
        common = dict(dim=c.residual_dim, num_quantizers=c.levels, quantize_dropout=c.levels > 1)
        if c.kind == "fsq":
            return ResidualFSQ(levels=fsq_levels_of(size, c.fsq_levels), **common)
        if c.kind == "lfq":
            return ResidualLFQ(codebook_size=size, entropy_loss_weight=c.lfq_entropy_weight, **common)
        return ResidualVQ(
            codebook_size=size,
            kmeans_init=True,
            decay=c.vq_decay,
            threshold_ema_dead_code=c.vq_dead_code_threshold,
            commitment_weight=c.commitment_weight,
            **common,
        )

    # -- forward --------------------------------------------------------------------------------
    def forward(self, z: Tensor) -> QuantizerOutput:
        """Quantize a batch of idea vectors.

        Args:
            z: (B, D) idea vectors, D = `self.dim`.

        Returns:
            QuantizerOutput with quantized (B, D), indices (B, L), aux_loss, kept_levels (B,).
        """
        with torch.autocast(z.device.type, enabled=False):
            z = z.float()
            if self.cfg.hierarchy == "matryoshka":
                return self._forward_matryoshka(z)
            return self._forward_residual(z)

    def _forward_matryoshka(self, z: Tensor) -> QuantizerOutput:
        aux = z.new_zeros(())
        if self.fused is not None:
            quantized, idx = self.fused(rearrange(z, "b d -> b 1 d"))
            quantized, indices = rearrange(quantized, "b 1 d -> b d"), rearrange(idx, "b 1 l -> b l")
        else:
            parts, cols = [], []
            for q, part in zip(self.quantizers, z.split(self.level_dims, dim=-1)):
                out, idx, loss = _call(q, rearrange(part, "b d -> b 1 d"))
                parts.append(rearrange(out, "b 1 d -> b d"))
                cols.append(rearrange(idx, "b 1 -> b"))
                aux = aux + loss
            quantized, indices = torch.cat(parts, dim=-1), torch.stack(cols, dim=-1)
        kept = torch.full((z.shape[0],), self.levels, device=z.device, dtype=torch.long)
        cfg = self.cfg
        if self.training and cfg.level_dropout + cfg.plan_levels_dropout > 0 and self.levels > 1:
            # Nested dropout per sample: keep a prefix of 1..L-1 levels (uniform or geometric length).
            draw = torch.rand(z.shape[0], device=z.device)
            if cfg.prefix_dist == "uniform":  # randint keeps earlier uniform runs reproducible
                cut = torch.randint(1, self.levels, (z.shape[0],), device=z.device)
            else:
                cut = 1 + torch.multinomial(self._prefix_probs(z.device), z.shape[0], replacement=True)
            kept = torch.where(draw < cfg.level_dropout, cut, kept)
            if cfg.plan_levels:  # then a further share at the planner's depth
                at_plan = (draw >= cfg.level_dropout) & (draw < cfg.level_dropout + cfg.plan_levels_dropout)
                kept = kept.masked_fill(at_plan, cfg.plan_levels)
            quantized = self.mask_levels(quantized, kept)
        return QuantizerOutput(quantized, indices.long(), aux, kept)

    def _prefix_probs(self, device: torch.device) -> Tensor:
        """(L-1,) probabilities of keeping 1..L-1 levels when a sample is cut."""
        k = torch.arange(1, self.levels, device=device, dtype=torch.float)
        uniform, geometric = torch.full_like(k, 1 / len(k)), 0.5**k / (0.5**k).sum()
        return {"uniform": uniform, "geometric": geometric, "mixed": (uniform + geometric) / 2}[self.cfg.prefix_dist]

    def _forward_residual(self, z: Tensor) -> QuantizerOutput:
        rq = self.residual
        # The library drops levels on every training batch; we want it on a fraction of them only.
        use_dropout = self.training and self.levels > 1 and random.random() < self.cfg.level_dropout
        rq.quantize_dropout = use_dropout
        try:
            out = rq(rearrange(z, "b d -> b 1 d"))
        finally:
            rq.quantize_dropout = self.levels > 1  # prefix decoding needs it on
        quantized, idx = out[0], out[1]
        aux = out[2].sum() if len(out) > 2 and torch.is_tensor(out[2]) else z.new_zeros(())
        idx = rearrange(idx, "b 1 l -> b l").long()
        kept = (idx >= 0).sum(-1)
        return QuantizerOutput(rearrange(quantized, "b 1 d -> b d"), idx, aux, kept)

    # -- decoding codes -------------------------------------------------------------------------
    def decode_indices(self, indices: Tensor) -> Tensor:
        """The decoder-side vector for a prefix of codes.

        Args:
            indices: (B, k) codes of the first k levels, 1 <= k <= L.

        Returns:
            (B, D) the same vector `forward` gives for those codes with levels > k absent.
        """
        k = indices.shape[-1]
        if not 1 <= k <= self.levels:
            raise UserError(f"expected codes for 1..{self.levels} levels, got {k}")
        self.check_indices(indices)
        indices = indices.long()
        with torch.autocast(indices.device.type, enabled=False):
            if self.cfg.hierarchy == "residual":
                out = self.residual.get_output_from_indices(rearrange(indices, "b l -> b 1 l"))
                return rearrange(out, "b 1 d -> b d").float()
            kept = torch.full((indices.shape[0],), k, device=indices.device, dtype=torch.long)
            if self.fused is not None:
                full = torch.cat([indices, indices.new_zeros((indices.shape[0], self.levels - k))], dim=-1)
                codes = self.fused.indices_to_codes(rearrange(full, "b l -> b 1 l"))
                return self.mask_levels(rearrange(codes, "b 1 d -> b d").float(), kept)
            parts = []
            for level, (q, dim) in enumerate(zip(self.quantizers, self.level_dims)):
                if level < k:
                    parts.append(rearrange(_codes(q, indices[:, level : level + 1]), "b 1 d -> b d").float())
                else:
                    parts.append(indices.new_zeros((indices.shape[0], dim), dtype=torch.float))
            return self.mask_levels(torch.cat(parts, dim=-1), kept)

    def check_indices(self, indices: Tensor) -> None:
        """Raise UserError if any code is outside its level's codebook."""
        for level in range(indices.shape[-1]):
            col, size = indices[..., level], self.codebook_sizes[level]
            if col.numel() and (int(col.min()) < 0 or int(col.max()) >= size):
                bad = int(col.max()) if int(col.max()) >= size else int(col.min())
                raise UserError(f"code {bad} out of range for level {level + 1} (codebook size {size})")

    def mask_levels(self, quantized: Tensor, kept: Tensor) -> Tensor:
        """Replace the slices of levels >= kept[b] by the learned absent vector (matryoshka only)."""
        level_of_dim = torch.repeat_interleave(
            torch.arange(self.levels, device=quantized.device),
            torch.tensor(self.level_dims, device=quantized.device),
        )
        present = level_of_dim[None, :] < kept[:, None]
        return torch.where(present, quantized, self.absent.to(quantized.dtype))


def _call(q: nn.Module, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Uniform (quantized, indices, aux_loss) from FSQ / LFQ / VectorQuantize on (B, 1, d)."""
    out = q(x)
    if isinstance(q, FSQ):
        return out[0], out[1], x.new_zeros(())
    if isinstance(q, LFQ):
        return out.quantized, out.indices, out.entropy_aux_loss
    return out[0], out[1], out[2].sum()


def _codes(q: nn.Module, idx: Tensor) -> Tensor:
    """Code vectors (B, 1, d) for indices (B, 1) of one single-level quantizer."""
    if isinstance(q, (FSQ, LFQ)):
        return q.indices_to_codes(idx)
    return q.get_output_from_indices(idx)
