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

from decoder.model import Condition, DecoderConfig, IdeaDecoder, SpecialIds
from decoder.story_context import ABSENT, CODES, TEXT
from hiertok.data.ideas import IdeaBatch
from hiertok.detail_noise import copyable_partners, swap_details
from hiertok.encoder import EncoderConfig, IdeaEncoder
from hiertok.errors import UserError
from hiertok.idea_losses import NextIdeaPredictor, ParallelTokens, info_nce, infonce_uniformity, total_coding_rate
from hiertok.quantize import MultiLevelQuantizer, QuantizerConfig

UNIFORMITY_KINDS = ("tcr", "infonce")


@dataclass
class LossConfig:
    """Weights of the training terms (reconstruction always has weight 1; 0 turns a term off)."""

    bow_weight: float = 0.0  # 0.1-1 helped a prototype on TinyStories; on the synthetic world it slows learning
    context: int = 2  # previous ideas the next-idea predictors see
    # Train the encoder through the rows that are only context (for the next-idea losses, codes shown as
    # story context) too.
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
    # Every token predicted at once from the code vector and its position (idea_losses.ParallelTokens), so that
    # the codes carry what the autoregressive decoder could take from the idea's earlier tokens (pixel frames).
    parallel_weight: float = 0.0
    # With a copy head: the pointer's own log-mass on each target token the story context holds, maximised beside
    # the mixture (decoder/copy.py), so that a closed gate cannot keep the pointer from learning to find it.
    copy_pointer_weight: float = 0.0


def validate_losses(cfg: LossConfig, levels: int, hierarchy: str) -> None:
    """Raise UserError with one line if the loss config cannot work."""
    weights = (
        "bow_weight",
        "next_idea_weight",
        "reencode_weight",
        "uniformity_weight",
        "next_mse_weight",
        "parallel_weight",
        "copy_pointer_weight",
    )
    for name in weights:
        if getattr(cfg, name) < 0:
            raise UserError(f"model.loss.{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.uniformity not in UNIFORMITY_KINDS:
        raise UserError(f"model.loss.uniformity must be one of {UNIFORMITY_KINDS}, got {cfg.uniformity!r}")
    for name in ("next_idea_tau", "reencode_tau", "uniformity_tau", "tcr_eps"):
        if getattr(cfg, name) <= 0:
            raise UserError(f"model.loss.{name} must be > 0, got {getattr(cfg, name)}")
    if (cfg.next_idea_weight > 0 or cfg.next_mse_weight > 0) and cfg.context < 1:
        raise UserError("model.loss.context must be >= 1 for the next-idea losses")
    if not 0 <= cfg.next_idea_levels <= levels:
        raise UserError(f"model.loss.next_idea_levels must be in 0..{levels}, got {cfg.next_idea_levels}")
    if cfg.next_idea_weight > 0 and cfg.next_idea_levels and hierarchy != "matryoshka":
        raise UserError("model.loss.next_idea_levels needs the matryoshka hierarchy (levels are slices)")


@dataclass
class ModelConfig:
    """Everything that shapes the tokenizer's network."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    loss: LossConfig = field(default_factory=LossConfig)


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
        if cfg.decoder.detail_noise_from > self.quantizer.levels:
            raise UserError(
                f"model.decoder.detail_noise_from ({cfg.decoder.detail_noise_from}) is past the last level "
                f"({self.quantizer.levels})"
            )
        self.bow_head = nn.Linear(dim, vocab_size) if loss.bow_weight > 0 else None
        self.next_idea_head = self.next_idea_keys = None
        if loss.next_idea_weight > 0:
            width = self.predicted_width
            self.next_idea_head = NextIdeaPredictor(dim, loss.context, 128)
            self.next_idea_keys = nn.Sequential(nn.Linear(width, 128), nn.GELU(), nn.Linear(128, 128))
        self.next_mse_head = NextIdeaPredictor(dim, loss.context, dim) if loss.next_mse_weight > 0 else None
        self.parallel_head = None
        if loss.parallel_weight > 0:
            self.parallel_head = ParallelTokens(dim, cfg.decoder.max_len, vocab_size)

    @property
    def levels(self) -> int:
        return self.quantizer.levels

    @property
    def predicted_width(self) -> int:
        """Width of the slice the contrastive next-idea loss predicts (the first k levels, or all)."""
        k = self.cfg.loss.next_idea_levels
        return sum(self.quantizer.level_dims[:k]) if k else self.quantizer.dim

    def decoder_condition(
        self,
        targets: Tensor,
        context: Tensor,
        codes: Tensor,
        tokens: Tensor,
        mask: Tensor,
        text_known: Tensor | None = None,
        kept: Tensor | None = None,
        target_codes: Tensor | None = None,
        state: Tensor | None = None,
    ) -> Condition:
        """What the decoder writes some rows from: their codes and the earlier ideas of their stories.

        An earlier idea is shown by its tokens where `text_known` (with `context_text`), else by its code
        vector (with `context_codes`), else not at all. Decoding from the first k levels knows every idea to
        k levels, so an earlier idea shown by its codes never shows more levels than its target kept
        (matryoshka nested dropout cuts each row on its own; the residual quantizer cuts whole batches, so
        its rows agree).

        Args:
            targets: (B,) rows to decode.
            context: (B, C') rows of each target's previous ideas, nearest first, -1 where there is none.
            codes: (N, D) code vectors of all rows (each already cut to its own kept levels).
            tokens: (N, T) token ids of all rows; mask: (N, T) their real tokens.
            text_known: (B, C') True where that earlier idea's text is known (None: none is).
            kept: (N,) levels each row kept (`QuantizerOutput.kept_levels`) in training; None when all rows
                are known to the same levels (decoding codes).
            target_codes: (B, D) the targets' code vectors when they differ from `codes[targets]` (detail noise).
            state: (B, state_dim) the targets' states (`DecoderConfig.state_dim`), or None.

        Returns:
            The decoder's Condition.
        """
        c = self.decoder.cfg.context
        own = codes[targets] if target_codes is None else target_codes
        if c == 0 or context.shape[1] == 0:
            return self.decoder.condition(own, state=state)
        rows = context[:, :c]
        present = rows >= 0
        shown = present & (text_known[:, :c] if text_known is not None else torch.zeros_like(present))
        shown &= self.decoder.cfg.context_text
        kinds = torch.where(shown, TEXT, torch.where(present, CODES, ABSENT))
        if not self.decoder.cfg.context_codes:
            kinds = kinds.masked_fill(kinds == CODES, ABSENT)
        safe = rows.clamp(min=0)
        width = int(mask[safe[shown]].sum(-1).max()) if bool(shown.any()) else 1  # pad only to the longest shown
        ctx_tokens, ctx_mask = tokens[safe][..., :width], mask[safe][..., :width]
        ctx_codes = None
        if self.decoder.cfg.context_codes:
            ctx_codes = codes[safe]
            if kept is not None and self.cfg.quantizer.hierarchy == "matryoshka":
                b, cc = rows.shape
                flat = self.quantizer.mask_levels(
                    rearrange(ctx_codes, "b c d -> (b c) d"), repeat(kept[targets], "b -> (b c)", c=cc)
                )
                ctx_codes = rearrange(flat, "(b c) d -> b c d", c=cc)
        return self.decoder.condition(own, kinds, ctx_tokens, ctx_mask, ctx_codes, state)

    def sample_context(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """The story context a training target sees, drawn as generation and coding meet it.

        A plan continues a prompt: its ideas know the prompt's text, and the plan's earlier ideas by their
        codes only until they are written; a lossless code knows the text of every earlier idea. So each
        target knows the text of all but its nearest m earlier ideas, m uniform in 0..n (n: the earlier ideas
        it has), or, for a `context_full` fraction, of every earlier idea (m = 0: the last decoding pass and the
        lossless code); a `context_dropout` fraction sees no context at all.

        Args:
            context: (B, C) rows of the previous ideas, nearest first, -1 where there is none.

        Returns:
            context (B, C) with dropped targets' rows set to -1, and text_known (B, C).
        """
        b, c = context.shape
        present = context >= 0
        unknown = (torch.rand(b, device=context.device) * (present.sum(1) + 1)).floor().long()
        dropped = torch.rand(b, device=context.device) < self.decoder.cfg.context_dropout
        if self.decoder.cfg.context_full > 0:  # drawn only when asked, so that older configs train as they did
            unknown = unknown.masked_fill(torch.rand(b, device=context.device) < self.decoder.cfg.context_full, 0)
        text_known = present & (torch.arange(c, device=context.device)[None, :] >= unknown[:, None])
        return context.masked_fill(dropped[:, None], -1), text_known

    def encoded_rows(self, batch: IdeaBatch) -> Tensor:
        """(N,) True at the rows whose idea vectors a step uses: the targets, the previous ideas the next-idea
        losses predict from, context ideas shown by their codes, and every row for the uniformity term. A
        context idea shown by its text needs only its tokens."""
        n = batch.tokens.shape[0]
        needed = torch.zeros(n, dtype=torch.bool, device=batch.tokens.device)
        needed[batch.targets] = True
        loss = self.cfg.loss
        if self.next_idea_head is not None or self.next_mse_head is not None:
            needed[batch.previous[batch.previous >= 0]] = True
        if self.decoder.cfg.context_codes:
            needed[batch.context[batch.context >= 0]] = True
        if loss.uniformity_weight > 0 or not self.decoder.cfg.context:
            needed[:] = True
        return needed

    def encode_rows(self, batch: IdeaBatch, needed: Tensor | None = None, group: int = 32) -> Tensor:
        """Idea vectors (N, D) of the batch rows: the targets at once, the other `needed` rows in length groups
        (rows not needed are left 0).

        The targets come from one length bucket (`StepBatches`), but the rows added for the decoder's story
        context and the next-idea losses have any length. Sorted by length and encoded `group` rows at a
        time, each group pads only to its own longest idea.
        """
        n = batch.tokens.shape[0]
        if n == len(batch.targets):
            return self.encoder(batch.tokens, batch.mask)
        is_target = torch.zeros(n, dtype=torch.bool, device=batch.tokens.device)
        is_target[batch.targets] = True
        extra = (~is_target & (needed if needed is not None else True)).nonzero().squeeze(-1)
        extra = extra[batch.mask[extra].sum(-1).argsort(stable=True)]
        groups = (batch.targets, *(extra.split(group) if len(extra) else ()))
        outs = []
        for i, rows in enumerate(groups):
            with torch.set_grad_enabled(torch.is_grad_enabled() and (i == 0 or self.cfg.loss.context_grad)):
                outs.append(self.encoder(*batch.rows(rows)))
        out = torch.cat(outs)
        return out.new_zeros((n, out.shape[-1])).index_copy(0, torch.cat(groups), out)

    def forward(self, batch: IdeaBatch) -> AutoencoderOutput:
        """Encode, quantize and reconstruct a batch (teacher forcing).

        Args:
            batch: ideas with the earlier ideas of their stories.

        Returns:
            AutoencoderOutput with the total loss and its parts.
        """
        needed = self.encoded_rows(batch)
        z = self.encode_rows(batch, needed)
        if bool(needed.all()):
            q = self.quantizer(z)
        else:  # quantize only what was encoded: zero rows would move VQ codebooks and batch statistics
            rows = needed.nonzero().squeeze(1)
            q = self.quantizer(z[rows]).at_rows(rows, len(z))
        quantized = q.quantized.to(z.dtype)
        target_codes = quantized[batch.targets]  # the true codes of the ideas decoded (`own` may get swapped details)
        context, text_known, own = batch.context, None, target_codes
        dcfg = self.decoder.cfg
        if dcfg.context and context.shape[1]:
            context, text_known = self.sample_context(context)
            if self.training and dcfg.detail_noise > 0:
                nearest = context[:, : dcfg.context]
                shown = (nearest >= 0) & text_known[:, : dcfg.context]
                t = batch.targets
                allowed = None
                if dcfg.detail_noise_copyable:
                    rows = nearest.clamp(min=0)
                    allowed = copyable_partners(*batch.rows(t), batch.tokens[rows], batch.mask[rows] & shown[..., None])
                own, _ = swap_details(
                    self.quantizer,
                    own,
                    q.indices[t],
                    q.kept_levels[t],
                    shown.any(1),
                    dcfg.detail_noise,
                    dcfg.detail_noise_from,
                    allowed,
                )
        cond = self.decoder_condition(
            batch.targets, context, quantized, batch.tokens, batch.mask, text_known, q.kept_levels, own
        )
        tokens, mask = batch.rows(batch.targets)
        inp, target, tmask = self.decoder.teacher_forcing(tokens, mask)
        if self.training:
            inp = self.decoder.drop_inputs(inp)
        scored = self.decoder.score(inp, cond, target, full=self.cfg.loss.reencode_weight > 0)
        n_tok = tmask.sum()
        recon = -(scored.log_prob * tmask).sum() / n_tok
        acc = ((scored.predicted == target) & tmask).sum() / n_tok
        bow = self.bow_loss(target_codes, tokens, mask) if self.bow_head is not None else recon.new_zeros(())
        terms = self.idea_terms(z, batch, scored.logits, tokens, mask, needed)
        if self.parallel_head is not None:
            terms["parallel"] = self.parallel_head(target_codes, tokens, mask)
        if self.cfg.loss.copy_pointer_weight > 0 and scored.pointer_log_mass is not None:
            held = tmask & scored.pointer_log_mass.isfinite()  # targets the story context holds
            terms["copy_pointer"] = -scored.pointer_log_mass[held].sum() / held.sum().clamp(min=1)
        w = self.cfg.loss
        loss = recon + w.bow_weight * bow + q.aux_loss
        weights = {
            "next_idea": w.next_idea_weight,
            "reencode": w.reencode_weight,
            "next_mse": w.next_mse_weight,
            "parallel": w.parallel_weight,
            "copy_pointer": w.copy_pointer_weight,
        }
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
        self, z: Tensor, batch: IdeaBatch, logits: Tensor, tokens: Tensor, mask: Tensor, encoded: Tensor | None = None
    ) -> dict[str, Tensor]:
        """The enabled idea-learning terms, unweighted (see `LossConfig`).

        Args:
            z: (N, D) idea vectors of every batch row (before quantization).
            encoded: (N,) the rows `z` holds (`encoded_rows`; None: all); the others are no negatives.
            batch: the batch (targets, previous ideas).
            logits: (B, T+1, V) the decoder's teacher-forced logits for the targets (None without `reencode`).
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
                rows = torch.arange(len(z), device=z.device) if encoded is None else encoded.nonzero().squeeze(1)
                position = torch.full((len(z),), -1, dtype=torch.long, device=z.device)
                position[rows] = torch.arange(len(rows), device=z.device)
                keys = self.next_idea_keys(z[rows, : self.predicted_width])
                terms["next_idea"] = (
                    info_nce(pred, keys, position[batch.targets[has_prev]], cfg.next_idea_tau)
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

    def embed(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Continuous idea vectors (B, D) of a batch of ideas (tokens, mask: (B, T))."""
        with torch.no_grad():
            return self.encoder(tokens, mask).float()

    def encode(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Codes of a batch of ideas.

        Args:
            tokens: (B, T) token ids; mask: (B, T).

        Returns:
            (B, L) int64 codes.
        """
        with torch.no_grad():
            return self.quantizer(self.encoder(tokens, mask)).indices
