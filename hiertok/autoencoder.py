"""The idea autoencoder: encoder -> multi-level quantizer -> conditioned decoder, and its training losses.

Losses: reconstruction cross-entropy of each idea's tokens given its codes, plus a bag-of-words term
(predict the idea's token multiset from the code vector alone), which forces the codes to carry content
the autoregressive decoder could otherwise guess from its own prefix, plus the quantizer's aux loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from decoder.model import DecoderConfig, IdeaDecoder, SpecialIds
from hiertok.encoder import EncoderConfig, IdeaEncoder
from hiertok.quantize import MultiLevelQuantizer, QuantizerConfig


@dataclass
class LossConfig:
    """Weights of the training terms (reconstruction always has weight 1)."""

    bow_weight: float = 0.0  # 0.1-1 helped a prototype on TinyStories; on the synthetic world it slows learning


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
    neighbors: (B, 2w) rows of the previous w and next w ideas, -1 where none exists.
    """

    tokens: Tensor
    mask: Tensor
    targets: Tensor
    neighbors: Tensor

    def to(self, device: torch.device | str) -> IdeaBatch:
        return IdeaBatch(*(t.to(device) for t in (self.tokens, self.mask, self.targets, self.neighbors)))


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


class IdeaAutoencoder(nn.Module):
    """Encoder + quantizer + decoder + bag-of-words head."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, special: SpecialIds):
        super().__init__()
        self.cfg = cfg
        self.special = special
        self.quantizer = MultiLevelQuantizer(cfg.quantizer)
        self.encoder = IdeaEncoder(cfg.encoder, vocab_size, cfg.decoder.max_len, self.quantizer.dim)
        self.decoder = IdeaDecoder(cfg.decoder, vocab_size, self.quantizer.dim, special)
        # Built only when used: a parameter without gradients breaks DistributedDataParallel.
        self.bow_head = nn.Linear(self.quantizer.dim, vocab_size) if cfg.loss.bow_weight > 0 else None

    @property
    def levels(self) -> int:
        return self.quantizer.levels

    def neighbor_vectors(self, quantized: Tensor, targets: Tensor, neighbors: Tensor) -> tuple[Tensor, Tensor]:
        """Stack each target's code vector with its neighbours' for the decoder prefix.

        Args:
            quantized: (N, D) code vectors of all batch rows.
            targets: (B,) rows to decode.
            neighbors: (B, 2w) neighbour rows or -1.

        Returns:
            vectors (B, 1+2w, D) and presence mask (B, 1+2w).
        """
        rows = torch.cat([targets[:, None], neighbors], dim=1)
        present = rows >= 0
        return quantized[rows.clamp(min=0)], present

    def forward(self, batch: IdeaBatch) -> AutoencoderOutput:
        """Encode, quantize and reconstruct a batch (teacher forcing).

        Args:
            batch: ideas with their neighbours.

        Returns:
            AutoencoderOutput with the total loss and its parts.
        """
        z = self.encoder(batch.tokens, batch.mask)
        q = self.quantizer(z)
        quantized = q.quantized.to(z.dtype)
        vectors, present = self.neighbor_vectors(quantized, batch.targets, batch.neighbors)
        prefix = self.decoder.prefix(vectors, present)
        tokens, mask = batch.tokens[batch.targets], batch.mask[batch.targets]
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
        loss = recon + self.cfg.loss.bow_weight * bow + q.aux_loss
        return AutoencoderOutput(
            loss, recon.detach(), bow.detach(), q.aux_loss.detach(), acc.detach(), q.indices, n_tok.detach()
        )

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
    def encode(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Codes of a batch of ideas.

        Args:
            tokens: (B, T) token ids; mask: (B, T).

        Returns:
            (B, L) int64 codes.
        """
        return self.quantizer(self.encoder(tokens, mask)).indices
