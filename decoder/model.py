"""Conditioned token decoder: an autoregressive x-transformers decoder that reads an idea's code vector as a
prefix embedding and writes the idea's tokens; with a story context, it also cross-attends to the ideas
before it.

The idea's own code is one prefix embedding, not cross-attention: prototypes showed a cross-attended code is
easy to bypass, and a decoder given several prefix vectors learned the event but not the names, while one
prefix embedding that every position attends to is read.

The story context is what the receiver of a story already has, as global-to-local models (MegaByte, Block
Transformer) give their local decoder what came before its block: each of the C previous ideas by its
tokens when its text is known (a prompt, an idea decoded earlier, any earlier idea of a text being coded), by
its code vector when only its codes are (a plan not yet written, with `context_codes`), or not at all.
Cross-attention to the earlier ideas' tokens lets the decoder copy what the story established (names,
places) instead of guessing it from codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import repeat
from torch import Tensor, nn
from x_transformers import TransformerWrapper
from x_transformers.x_transformers import LayerIntermediates

from decoder.copy import CopyHead
from decoder.story_context import ABSENT, StoryContext
from hiertok.errors import UserError
from hiertok.layers import rotary_layers, start_raster
from hiertok.patches import Unpatch, check_patch, first_of_patches, patched_length


@dataclass
class DecoderConfig:
    """Size and conditioning of the token decoder."""

    dim: int = 128
    depth: int = 2
    heads: int = 4
    dim_head: int = 64  # width of one attention head (dim / heads keeps the attention as wide as the model)
    dropout: float = 0.0
    max_len: int = 128  # longest idea in tokens (+ BOS/EOS); rotary positions extend past it
    # Learned absolute positions beside the rotary ones: a pixel frame's decoder must know where in the raster it
    # writes (rotary attention sees only distances), text needs no such thing.
    abs_positions: bool = False
    raster_width: int = 0  # with abs_positions: start them as a raster this wide (as EncoderConfig.raster_width)
    # Fraction of the decoder's teacher-forced input tokens (after BOS) replaced by PAD in training (word dropout,
    # Bowman et al. 2016): a decoder that can read the earlier tokens of its own idea may ignore the codes where
    # those tokens predict the next one (a frame's pixels after a square's first one), and the codes then stop
    # carrying it (posterior collapse). 0: off.
    input_dropout: float = 0.0
    # Add the idea's prefix embedding (its code) to every token's input embedding too, as MegaByte feeds the global
    # model's output to every position of its local model: a long idea (a frame's 256 pixels) then reads its code at
    # every step, not only through attention to one prefix position among hundreds. False: prepended only.
    code_every_token: bool = False
    # Write every token from the code and its position alone, all at once: the inputs after BOS are PAD, in training
    # and in decoding (one forward pass an idea), so no token can be read off the ones before it and the codes must
    # carry the whole idea (a non-autoregressive decoder, for ideas of fixed size such as a frame's 256 pixels: an
    # autoregressive one draws a square from its first pixels and leaves the codes to say little of where it is).
    parallel: bool = False
    # With `parallel`: P neighbouring tokens written from one position (hiertok/patches.py, as MegaByte's patches),
    # each from its own linear map of the position's state: a frame as 64 strips of 4 pixels. 1: a position a token.
    patch: int = 1
    context: int = 0  # previous ideas of the story the decoder reads (0: each idea decodes from its codes alone)
    context_text: bool = True  # show earlier ideas whose text is known by their tokens (False: never)
    context_codes: bool = False  # show earlier ideas not shown by text by their codes
    copy: bool = False  # a pointer over the context's tokens mixed into the output (decoder/copy.py)
    # Self-attention layers over the story context before the decoder reads it (and the copy head points into it):
    # a token then knows its role in its sentence ("Clara" in "met a friend named Clara" is the friend; "the hill"
    # after "led to" is where the hero went). 0: each context token is its embedding alone. One layer costs tiny.yaml
    # about 45% more a step; with the copy pointer trained (model.loss.copy_pointer_weight) it is tiny.yaml's
    # (experiments/README.md, sessions 22 and 29).
    context_layers: int = 0
    context_dropout: float = 0.1  # fraction of training ideas shown no context, so decoding without one stays good
    # Fraction of training ideas shown the text of every earlier idea, as the last decoding pass and the lossless
    # code read them (the others know all but their nearest m, as earlier passes do).
    context_full: float = 0.0
    # Fraction of training ideas shown a context whose finer levels come from another idea with the same level-1
    # code (hiertok/detail_noise.py): the decoder learns to keep what the story fixed when a plan's details differ.
    detail_noise: float = 0.0
    detail_noise_from: int = 0  # the first level swapped (2..L); 0: a uniform level per idea
    # Swap only with ideas whose differing tokens the story shows, so that every wrong detail can be corrected
    # from the context (otherwise the decoder is also trained to guess details nobody told it).
    detail_noise_copyable: bool = False
    neighbor_window: int = 0  # removed (it read the next ideas' codes too); kept so that old configs load
    # Width of a per-idea state vector added to the prefix (the planner's state before the idea, as a
    # global-to-local model's local decoder reads the global model's; experiments/planner_state.py). 0: none.
    state_dim: int = 0

    def validate(self) -> None:
        """Raise UserError with one line if the decoder config cannot work."""
        if self.neighbor_window:
            raise UserError(
                "model.decoder.neighbor_window was removed: the decoder reads only earlier ideas "
                "(model.decoder.context=C); retrain with that"
            )
        if self.context < 0:
            raise UserError(f"model.decoder.context must be >= 0, got {self.context}")
        if self.copy and not (self.context and self.context_text):
            raise UserError("model.decoder.copy copies the context's tokens: it needs context > 0 and context_text")
        if not 0.0 <= self.context_dropout <= 1.0:
            raise UserError(f"model.decoder.context_dropout must be in [0, 1], got {self.context_dropout}")
        if not 0.0 <= self.context_full <= 1.0:
            raise UserError(f"model.decoder.context_full must be in [0, 1], got {self.context_full}")
        if not 0.0 <= self.input_dropout < 1.0:
            raise UserError(f"model.decoder.input_dropout must be in [0, 1), got {self.input_dropout}")
        if not 0.0 <= self.detail_noise <= 1.0:
            raise UserError(f"model.decoder.detail_noise must be in [0, 1], got {self.detail_noise}")
        if self.state_dim < 0:
            raise UserError(f"model.decoder.state_dim must be >= 0, got {self.state_dim}")
        if self.parallel and self.input_dropout:
            raise UserError("model.decoder.input_dropout does nothing with model.decoder.parallel (every input is PAD)")
        check_patch(self.patch, "model.decoder")
        if self.patch > 1 and not self.parallel:
            raise UserError("model.decoder.patch writes several tokens a position: it needs model.decoder.parallel")
        if self.raster_width % self.patch:
            raise UserError(
                f"model.decoder.raster_width ({self.raster_width}) must be a multiple of patch ({self.patch})"
            )
        if self.context_layers < 0:
            raise UserError(f"model.decoder.context_layers must be >= 0, got {self.context_layers}")
        if self.context_layers and not self.context:
            raise UserError("model.decoder.context_layers encode the story context: it needs context > 0")
        if self.detail_noise_from == 1 or self.detail_noise_from < 0:
            raise UserError(f"model.decoder.detail_noise_from must be 0 or a level >= 2, got {self.detail_noise_from}")


@dataclass
class SpecialIds:
    """Token ids the decoder treats specially."""

    pad: int
    bos: int
    eos: int


@dataclass
class Scored:
    """Teacher-forced scores of target tokens (`IdeaDecoder.score`)."""

    log_prob: Tensor  # (B, T) log p of each target token
    predicted: Tensor  # (B, T) the most likely token at each position
    logits: Tensor | None = None  # (B, T, V) logits of the output distribution, when asked for
    # (B, T) the copy pointer's log-mass on the target (-inf where the context does not hold it); None without copy
    pointer_log_mass: Tensor | None = None


@dataclass
class Condition:
    """What a batch of rows is decoded from.

    prefix: (B, P, W) prefix embeddings (the idea's code; P may be 0).
    context: (B, S, W) cross-attended story context, or None.
    context_mask: (B, S) True at real context positions, or None.
    context_ids: (B, S) the token id at each context position, -1 where there is none (a code vector, padding).
    """

    prefix: Tensor
    context: Tensor | None = None
    context_mask: Tensor | None = None
    context_ids: Tensor | None = None

    def __len__(self) -> int:
        return self.prefix.shape[0]

    @property
    def device(self) -> torch.device:
        return self.prefix.device

    def rows(self, index: Tensor) -> Condition:
        """The condition of some rows, in `index` order."""
        return self._map(lambda t: t[index])

    def repeat(self, k: int) -> Condition:
        """Each row k times in a row: (B, ...) -> (B * k, ...)."""
        return self._map(lambda t: repeat(t, "b ... -> (b k) ...", k=k))

    def _map(self, fn) -> Condition:
        """The same function applied to every per-row tensor."""
        keep = (self.context, self.context_mask, self.context_ids)
        return Condition(fn(self.prefix), *(None if t is None else fn(t) for t in keep))


class IdeaDecoder(nn.Module):
    """Code vector (+ story context) -> autoregressive token logits."""

    def __init__(self, cfg: DecoderConfig, vocab_size: int, cond_dim: int, special: SpecialIds):
        """
        Args:
            cfg: decoder size and conditioning.
            vocab_size: BPE vocabulary size V.
            cond_dim: width D of the code vector of one idea.
            special: pad / bos / eos ids.
        """
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.special = special
        self.net = TransformerWrapper(
            num_tokens=vocab_size,
            max_seq_len=patched_length(cfg.max_len + 1, cfg.patch),
            use_abs_pos_emb=cfg.abs_positions,
            emb_dropout=cfg.dropout,
            attn_layers=rotary_layers(
                causal=True,
                dim=cfg.dim,
                depth=cfg.depth,
                heads=cfg.heads,
                dropout=cfg.dropout,
                cross_attend=cfg.context > 0,
                dim_head=cfg.dim_head,
                abs_positions=cfg.abs_positions,
            ),
        )
        # position t writes pixel t (patch t the pixels of a raster P times narrower)
        start_raster(self.net, cfg.abs_positions, cfg.raster_width // cfg.patch, "model.decoder")
        self.unpatch = Unpatch(cfg.dim, cfg.patch) if cfg.patch > 1 else None
        self.to_prefix = nn.Linear(cond_dim, cfg.dim)
        self.slot = nn.Parameter(torch.zeros(1, cfg.dim))  # marks the prefix position
        self.story = StoryContext(cfg, cond_dim) if cfg.context else None
        self.copy = CopyHead(cfg.dim) if cfg.copy else None
        self.to_state = None
        if cfg.state_dim:  # zero at the start: a decoder fine-tuned to read a state starts as it was
            self.to_state = nn.Linear(cfg.state_dim, cfg.dim)
            nn.init.zeros_(self.to_state.weight)
            nn.init.zeros_(self.to_state.bias)

    def prefix(self, codes: Tensor, state: Tensor | None = None) -> Tensor:
        """(B, D) code vectors (and (B, state_dim) states, with `state_dim`) -> (B, 1, W) prefix embeddings."""
        prefix = self.to_prefix(codes) + self.slot.to(codes.dtype)
        if self.to_state is not None and state is not None:
            prefix = prefix + self.to_state(state.to(codes.dtype))
        return prefix[:, None]

    def condition(
        self,
        codes: Tensor,
        kinds: Tensor | None = None,
        tokens: Tensor | None = None,
        mask: Tensor | None = None,
        context_codes: Tensor | None = None,
        state: Tensor | None = None,
    ) -> Condition:
        """What to decode each row from.

        Args:
            codes: (B, D) each idea's code vector.
            kinds: (B, C') ABSENT / TEXT / CODES per earlier idea, nearest first (None: no context).
            tokens: (B, C', T) the earlier ideas' token ids; mask: (B, C', T) their real tokens.
            context_codes: (B, C', D) the earlier ideas' code vectors (read where CODES).
            state: (B, state_dim) each idea's state (read with `state_dim`; None: none).

        Returns:
            The Condition: the prefix and, with a story context, the cross-attended sequence.
        """
        prefix = self.prefix(codes, state)
        if self.story is None:
            return Condition(prefix)
        b, c = codes.shape[0], self.cfg.context
        if kinds is None or kinds.shape[1] == 0:
            kinds = torch.zeros(b, c, dtype=torch.long, device=codes.device)
            tokens = torch.zeros(b, c, 1, dtype=torch.long, device=codes.device)
            mask = torch.zeros(b, c, 1, dtype=torch.bool, device=codes.device)
        else:  # fit C' to C columns (nearest first)
            pad = c - kinds.shape[1]
            kinds = F.pad(kinds[:, :c], (0, max(0, pad)), value=ABSENT)
            tokens = F.pad(tokens[:, :c], (0, 0, 0, max(0, pad)), value=self.special.pad)
            mask = F.pad(mask[:, :c], (0, 0, 0, max(0, pad)), value=False)
            if context_codes is not None:
                context_codes = F.pad(context_codes[:, :c], (0, 0, 0, max(0, pad)))
        return Condition(prefix, *self.story(kinds, tokens, mask, context_codes, self.net.token_emb))

    def forward(
        self, tokens: Tensor, cond: Condition, cache: LayerIntermediates | None = None
    ) -> tuple[Tensor, LayerIntermediates]:
        """Next-token logits.

        Args:
            tokens: (B, T) decoder input ids starting with BOS.
            cond: the rows' Condition (`condition()`).
            cache: the KV cache of a previous call on tokens[:, :-1] (then only the last position is new).

        Returns:
            logits (B, T, V) without cache, (B, 1, V) with it (with `copy`, log-probabilities, which are logits
            of the same distribution); and the new cache.
        """
        hidden, inter = self._hidden(tokens, cond, cache)
        logits = self.net.to_logits(hidden)
        if self.copy is not None and cond.context is not None:
            logits = self.copy(hidden, logits, cond.context, cond.context_ids)
        return logits, inter

    def score(self, tokens: Tensor, cond: Condition, target: Tensor, full: bool = False) -> Scored:
        """Teacher-forced scores of `target`: what training and the codelength need.

        With `copy`, log p(target) and the argmax come from the context positions (`CopyHead.target_log_prob`),
        not from the (B, T, V) mixture, which `full` asks for as well.

        Args:
            tokens: (B, T) decoder input ids starting with BOS.
            cond: the rows' Condition.
            target: (B, T) the next token at each position.
            full: also return the (B, T, V) logits of the output distribution.

        Returns:
            Scored: log_prob (B, T), predicted (B, T), logits (B, T, V) or None.
        """
        hidden, _ = self._hidden(tokens, cond, None)
        logits = self.net.to_logits(hidden)
        if self.copy is None or cond.context is None:
            log_p = logits.float().log_softmax(-1)
            return Scored(log_p.gather(-1, target[..., None])[..., 0], logits.argmax(-1), logits if full else None)
        log_prob, predicted, pointer = self.copy.target_log_prob(hidden, logits, cond.context, cond.context_ids, target)
        mixed = self.copy(hidden, logits, cond.context, cond.context_ids) if full else None
        return Scored(log_prob, predicted, mixed, pointer)

    def _hidden(
        self, tokens: Tensor, cond: Condition, cache: LayerIntermediates | None
    ) -> tuple[Tensor, LayerIntermediates]:
        """The final hidden states (B, T, W) of the token positions (the prefix cut off), and the new cache."""
        kw = {} if cond.context is None else {"context": cond.context, "context_mask": cond.context_mask}
        length = tokens.shape[1]
        if self.unpatch is not None:  # parallel: the inputs are BOS then PAD, so a patch's first id is all it has
            tokens = first_of_patches(tokens, self.unpatch.patch)
        if self.cfg.code_every_token and cond.prefix.shape[1]:
            kw["sum_embeds"] = cond.prefix[:, :1].expand(-1, tokens.shape[1], -1)  # cut to the new tokens with a cache
        hidden, inter = self.net(
            tokens, prepend_embeds=cond.prefix, cache=cache, return_embeddings_and_intermediates=True, **kw
        )
        if cache is None:
            hidden = hidden[:, cond.prefix.shape[1] :]
        if self.unpatch is not None:
            hidden = self.unpatch(hidden)[:, :length]
        return hidden, inter

    def drop_inputs(self, inp: Tensor) -> Tensor:
        """Teacher-forced inputs (B, T+1) with an `input_dropout` fraction of the tokens after BOS set to PAD."""
        if self.cfg.input_dropout <= 0:
            return inp
        drop = torch.rand(inp.shape, device=inp.device) < self.cfg.input_dropout
        drop[:, 0] = False
        return inp.masked_fill(drop, self.special.pad)

    def teacher_forcing(self, tokens: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Decoder inputs [BOS, x...] ([BOS, PAD...] with `parallel`), targets [x..., EOS] and their mask, all
        (B, T+1)."""
        b = tokens.shape[0]
        lengths = mask.sum(-1)
        bos = tokens.new_full((b, 1), self.special.bos)
        inp = torch.cat([bos, tokens.masked_fill(~mask | self.cfg.parallel, self.special.pad)], dim=1)
        target = torch.cat([tokens.masked_fill(~mask, self.special.pad), tokens.new_full((b, 1), self.special.pad)], 1)
        target = target.scatter(1, lengths.unsqueeze(1), self.special.eos)
        tmask = torch.arange(target.shape[1], device=tokens.device)[None, :] <= lengths[:, None]
        return inp, target, tmask
