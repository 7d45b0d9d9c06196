"""The idea autoencoder: encoder -> multi-level quantizer -> conditioned decoder, and its training losses.

Losses: reconstruction cross-entropy of each idea's tokens given its codes and the quantizer's aux loss,
plus optional weighted terms (all off by default, see `LossConfig`):
- bag-of-words: predict the idea's token multiset from the code vector alone, which forces the codes to
  carry content the autoregressive decoder could otherwise guess from its own prefix;
- contrastive next-idea: InfoNCE of a prediction from the previous ideas' vectors against the next idea;
- contrastive re-encoding: the decoder's teacher-forced soft output, re-encoded, against the idea vector;
- uniformity: total coding rate or InfoNCE's repulsive term over the batch's idea vectors;
- continuous next-idea baseline: an MSE regressor of the next idea vector (Large-Concept-Model style).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from decoder.model import DecoderConfig, IdeaDecoder, SpecialIds
from hiertok.encoder import EncoderConfig, IdeaEncoder
from hiertok.idea_losses import NextIdeaPredictor, info_nce, infonce_uniformity, total_coding_rate
from hiertok.quantize import MultiLevelQuantizer, QuantizerConfig

UNIFORMITY_KINDS = ("tcr", "infonce")


@dataclass
class LossConfig:
    """Weights of the training terms (reconstruction always has weight 1; 0 turns a term off)."""

    bow_weight: float = 0.0  # 0.1-1 helped a prototype on TinyStories; on the synthetic world it slows learning
    context: int = 2  # previous ideas the next-idea predictors see
    # Train the encoder through the rows that are only context (decoder neighbours, next-idea context) too.
    # False encodes them without gradients: their backward pass is skipped, and the encoder learns only
    # from reconstructing (and predicting) the targets.
    context_grad: bool = True
    # Contrastive next-idea prediction: the predicted vector against every idea of the batch (the ideas
    # of the same document included), temperature tau. `next_idea_levels` k > 0 predicts only the first
    # k levels' slice of the idea vector (matryoshka), e.g. 1 to make level 1 the predictable gist.
    next_idea_weight: float = 0.0
    next_idea_tau: float = 0.1
    next_idea_levels: int = 0
    # Contrastive re-encoding: softmax(decoder logits) @ encoder embedding table, re-encoded, against the
    # idea vector; the other ideas of the batch are the negatives.
    reencode_weight: float = 0.0
    reencode_tau: float = 0.1
    # Uniformity of the batch's idea vectors: "tcr" maximises the total coding rate (eps = tcr_eps),
    # "infonce" minimises InfoNCE's repulsive term (temperature uniformity_tau).
    uniformity_weight: float = 0.0
    uniformity: str = "tcr"
    tcr_eps: float = 0.5
    uniformity_tau: float = 0.1
    # Continuous next-idea baseline: MSE of a predicted next idea vector. Trained on detached vectors, as
    # LCM trains in a fixed embedding space: through the encoder, MSE would reward collapsing all vectors.
    next_mse_weight: float = 0.0


def validate_losses(cfg: LossConfig, levels: int, hierarchy: str) -> None:
    """Raise ValueError with one line if the loss config cannot work."""
    for name in ("bow_weight", "next_idea_weight", "reencode_weight", "uniformity_weight", "next_mse_weight"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"model.loss.{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.uniformity not in UNIFORMITY_KINDS:
        raise ValueError(f"model.loss.uniformity must be one of {UNIFORMITY_KINDS}, got {cfg.uniformity!r}")
    for name in ("next_idea_tau", "reencode_tau", "uniformity_tau", "tcr_eps"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"model.loss.{name} must be > 0, got {getattr(cfg, name)}")
    if (cfg.next_idea_weight > 0 or cfg.next_mse_weight > 0) and cfg.context < 1:
        raise ValueError("model.loss.context must be >= 1 for the next-idea losses")
    if not 0 <= cfg.next_idea_levels <= levels:
        raise ValueError(f"model.loss.next_idea_levels must be in 0..{levels}, got {cfg.next_idea_levels}")
    if cfg.next_idea_weight > 0 and cfg.next_idea_levels and hierarchy != "matryoshka":
        raise ValueError("model.loss.next_idea_levels needs the matryoshka hierarchy (levels are slices)")


@dataclass
class ModelConfig:
    """Everything that shapes the tokenizer's network."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass
class IdeaBatch:
    """A batch of ideas to reconstruct, with the neighbour ideas their decoder may see.

    tokens: (N, T) token ids of every idea in the batch (targets and neighbours), right-padded.
    mask: (N, T) True at real tokens.
    targets: (B,) rows of `tokens` to reconstruct.
    neighbors: (B, 2w) rows of the previous w and next w ideas (decoder context), -1 where none exists.
    previous: (B, C) rows of the targets' previous C ideas, nearest first (next-idea losses), -1 where the
        document has none.
    """

    tokens: Tensor
    mask: Tensor
    targets: Tensor
    neighbors: Tensor
    previous: Tensor

    def rows(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """Tokens and mask (R, T') of some rows, padded only to their own longest idea, not to the batch's."""
        mask = self.mask[rows]
        width = int(mask.sum(-1).max()) if len(rows) else 0
        return self.tokens[rows, :width], mask[:, :width]

    def to(self, device: torch.device | str) -> IdeaBatch:
        return IdeaBatch(*(t.to(device) for t in (self.tokens, self.mask, self.targets, self.neighbors, self.previous)))


@dataclass
class AutoencoderOutput:
    """Losses (scalars) and what the batch was coded as."""

    loss: Tensor
    recon: Tensor  # mean nats per target token (EOS included)
    bow: Tensor
    aux: Tensor
    token_accuracy: Tensor
    indices: Tensor  # (N, L)
    recon_tokens: Tensor  # number of target tokens
    terms: dict[str, Tensor] = field(default_factory=dict)  # the optional idea-learning terms, unweighted


class IdeaAutoencoder(nn.Module):
    """Encoder + quantizer + decoder + bag-of-words head."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, special: SpecialIds):
        super().__init__()
        self.cfg = cfg
        self.special = special
        self.quantizer = MultiLevelQuantizer(cfg.quantizer)
        self.encoder = IdeaEncoder(cfg.encoder, vocab_size, cfg.decoder.max_len, self.quantizer.dim)
        self.decoder = IdeaDecoder(cfg.decoder, vocab_size, self.quantizer.dim, special)
        # Heads are built only when used: a parameter without gradients breaks DistributedDataParallel.
        loss, dim = cfg.loss, self.quantizer.dim
        validate_losses(loss, self.quantizer.levels, cfg.quantizer.hierarchy)
        self.bow_head = nn.Linear(dim, vocab_size) if loss.bow_weight > 0 else None
        self.next_idea_head = self.next_idea_keys = None
        if loss.next_idea_weight > 0:
            width = self.predicted_width
            self.next_idea_head = NextIdeaPredictor(dim, loss.context, 128)
            self.next_idea_keys = nn.Sequential(nn.Linear(width, 128), nn.GELU(), nn.Linear(128, 128))
        self.next_mse_head = NextIdeaPredictor(dim, loss.context, dim) if loss.next_mse_weight > 0 else None

    @property
    def levels(self) -> int:
        return self.quantizer.levels

    @property
    def predicted_width(self) -> int:
        """Width of the slice the contrastive next-idea loss predicts (the first k levels, or all)."""
        k = self.cfg.loss.next_idea_levels
        return sum(self.quantizer.level_dims[:k]) if k else self.quantizer.dim

    def neighbor_vectors(
        self, quantized: Tensor, targets: Tensor, neighbors: Tensor, kept: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Stack each target's code vector with its neighbours' for the decoder prefix.

        Decoding from the first k levels knows every idea to k levels, so a neighbour never shows the decoder
        more levels than its target kept. Matryoshka nested dropout cuts each row on its own, hence the cut
        here; the residual quantizer drops levels for the whole batch at once, so its rows already agree.

        Args:
            quantized: (N, D) code vectors of all batch rows (each already cut to its own kept levels).
            targets: (B,) rows to decode.
            neighbors: (B, 2w) neighbour rows or -1.
            kept: (N,) levels each row kept (`QuantizerOutput.kept_levels`) in training; None when all rows
                are known to the same levels (decoding codes).

        Returns:
            vectors (B, 1+2w, D) and presence mask (B, 1+2w).
        """
        rows = torch.cat([targets[:, None], neighbors], dim=1)
        present = rows >= 0
        vectors = quantized[rows.clamp(min=0)]
        if kept is not None and neighbors.shape[1] and self.cfg.quantizer.hierarchy == "matryoshka":
            p = rows.shape[1]
            flat = self.quantizer.mask_levels(
                rearrange(vectors, "b p d -> (b p) d"), repeat(kept[targets], "b -> (b p)", p=p)
            )
            vectors = rearrange(flat, "(b p) d -> b p d", p=p)
        return vectors, present

    def encode_rows(self, batch: IdeaBatch, group: int = 32) -> Tensor:
        """Idea vectors (N, D) of every batch row: the targets at once, the other rows in length groups.

        The targets come from one length bucket (`StepBatches`), but the rows added for neighbours and
        next-idea context have any length. Sorted by length and encoded `group` rows at a time, each group
        pads only to its own longest idea. With every row padded to the batch's longest (and the targets
        decoded at that width too), a small-gist.yaml step with one neighbour each side took 0.71 s; now
        0.27 s, against 0.14 s without neighbours.
        """
        n = batch.tokens.shape[0]
        if n == len(batch.targets):
            return self.encoder(batch.tokens, batch.mask)
        is_target = torch.zeros(n, dtype=torch.bool, device=batch.tokens.device)
        is_target[batch.targets] = True
        extra = (~is_target).nonzero().squeeze(-1)
        extra = extra[batch.mask[extra].sum(-1).argsort(stable=True)]
        groups = (batch.targets, *extra.split(group))
        outs = []
        for i, rows in enumerate(groups):
            with torch.set_grad_enabled(torch.is_grad_enabled() and (i == 0 or self.cfg.loss.context_grad)):
                outs.append(self.encoder(*batch.rows(rows)))
        out = torch.cat(outs)
        return out.new_empty((n, out.shape[-1])).index_copy(0, torch.cat(groups), out)

    def forward(self, batch: IdeaBatch) -> AutoencoderOutput:
        """Encode, quantize and reconstruct a batch (teacher forcing).

        Args:
            batch: ideas with their neighbours.

        Returns:
            AutoencoderOutput with the total loss and its parts.
        """
        z = self.encode_rows(batch)
        q = self.quantizer(z)
        quantized = q.quantized.to(z.dtype)
        vectors, present = self.neighbor_vectors(quantized, batch.targets, batch.neighbors, q.kept_levels)
        prefix = self.decoder.prefix(vectors, present)
        tokens, mask = batch.rows(batch.targets)
        inp, target, tmask = self.decoder.teacher_forcing(tokens, mask)
        logits, _ = self.decoder(inp, prefix)
        logits = logits.float()
        nll = nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
        n_tok = tmask.sum()
        recon = (nll * tmask).sum() / n_tok
        acc = ((logits.argmax(-1) == target) & tmask).sum() / n_tok
        bow = (
            self.bow_loss(quantized[batch.targets], tokens, mask) if self.bow_head is not None else recon.new_zeros(())
        )
        terms = self.idea_terms(z, batch, logits, tokens, mask)
        w = self.cfg.loss
        loss = recon + w.bow_weight * bow + q.aux_loss
        weights = {"next_idea": w.next_idea_weight, "reencode": w.reencode_weight, "next_mse": w.next_mse_weight}
        weights["uniformity"] = -w.uniformity_weight if w.uniformity == "tcr" else w.uniformity_weight  # TCR: maximise
        loss = loss + sum(weights[name] * value for name, value in terms.items())
        return AutoencoderOutput(
            loss,
            recon.detach(),
            bow.detach(),
            q.aux_loss.detach(),
            acc.detach(),
            q.indices,
            n_tok.detach(),
            {name: value.detach() for name, value in terms.items()},
        )

    def idea_terms(
        self, z: Tensor, batch: IdeaBatch, logits: Tensor, tokens: Tensor, mask: Tensor
    ) -> dict[str, Tensor]:
        """The enabled idea-learning terms, unweighted (see `LossConfig`).

        Args:
            z: (N, D) idea vectors of every batch row (before quantization).
            batch: the batch (targets, previous ideas).
            logits: (B, T+1, V) the decoder's teacher-forced logits for the targets.
            tokens: (B, T) the targets' tokens (`IdeaBatch.rows(targets)`); mask: (B, T) their real-token mask.

        Returns:
            name -> scalar: next_idea, reencode, uniformity, next_mse (only the enabled ones).
        """
        cfg, terms = self.cfg.loss, {}
        z = z.float()
        predicting = batch.previous.shape[1] > 0  # a batch collated without context predicts nothing
        if predicting and (self.next_idea_head is not None or self.next_mse_head is not None):
            prev = batch.previous
            has_prev = prev[:, 0] >= 0  # ideas at a document start have nothing to be predicted from
            context, present = z[prev.clamp(min=0)], prev >= 0
            if self.next_idea_head is not None:
                pred = self.next_idea_head(context, present)[has_prev]
                keys = self.next_idea_keys(z[:, : self.predicted_width])
                terms["next_idea"] = (
                    info_nce(pred, keys, batch.targets[has_prev], cfg.next_idea_tau)
                    if has_prev.any()
                    else z.new_zeros(())
                )
            if self.next_mse_head is not None:
                pred = self.next_mse_head(context.detach(), present)[has_prev]
                target = z[batch.targets][has_prev].detach()
                terms["next_mse"] = nn.functional.mse_loss(pred, target) if has_prev.any() else z.new_zeros(())
        if cfg.reencode_weight > 0:
            soft = logits[:, : mask.shape[1]].float().softmax(-1) @ self.encoder.token_embedding.weight.float()
            again = self.encoder(tokens, mask, soft_embeddings=soft)
            terms["reencode"] = info_nce(
                again, z[batch.targets], torch.arange(len(batch.targets), device=z.device), cfg.reencode_tau
            )
        if cfg.uniformity_weight > 0:
            if cfg.uniformity == "tcr":
                terms["uniformity"] = total_coding_rate(z, cfg.tcr_eps)
            else:
                terms["uniformity"] = infonce_uniformity(z, cfg.uniformity_tau)
        return terms

    def bow_loss(self, vectors: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        """Mean nats of the idea's tokens under one softmax predicted from its code vector.

        Args:
            vectors: (B, D) code vectors.
            tokens: (B, T) idea tokens.
            mask: (B, T) real-token mask.
        """
        logp = self.bow_head(vectors).float().log_softmax(-1)
        picked = logp.gather(1, tokens) * mask
        return -(picked.sum() / mask.sum().clamp(min=1))

    @torch.no_grad()
    def embed(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Continuous idea vectors (B, D) of a batch of ideas (tokens, mask: (B, T))."""
        return self.encoder(tokens, mask).float()

    @torch.no_grad()
    def encode(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Codes of a batch of ideas.

        Args:
            tokens: (B, T) token ids; mask: (B, T).

        Returns:
            (B, L) int64 codes.
        """
        return self.quantizer(self.encoder(tokens, mask)).indices
