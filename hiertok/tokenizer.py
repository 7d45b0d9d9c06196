"""`IdeaTokenizer`: text <-> multi-level idea codes, with save_pretrained / from_pretrained.

A saved tokenizer is a directory holding `config.yaml` (the resolved training config),
`tokenizer.json` (the byte-level BPE) and `model.safetensors` (weights and quantizer buffers).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model

from decoder.generate import GenerationConfig, generate
from decoder.model import SpecialIds
from hiertok.autoencoder import IdeaAutoencoder, ModelConfig
from hiertok.codes import Codes
from hiertok.config import ConfigError, DataConfig, TrainConfig, load_config, to_yaml
from hiertok.data.bpe import BPE
from hiertok.data.ideas import Segmentation, join_ideas, pad_ideas, segment_document
from hiertok.training import save_weights

CONFIG_FILE, BPE_FILE, WEIGHTS_FILE = "config.yaml", "tokenizer.json", "model.safetensors"
# Weights that runs saved by earlier versions hold and this one no longer has (the neighbour design's "no
# neighbour here" vector): ignored when such a run is loaded.
RETIRED_WEIGHTS = {"decoder.missing"}


@dataclass
class TokenizerConfig:
    """Stage 1: the full config of an idea-tokenizer run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)


def segmentation_of(data: DataConfig) -> Segmentation:
    return Segmentation(data.segmenter, data.chunk_size, data.max_chars, data.max_idea_tokens, data.lead_space)


class IdeaTokenizer:
    """Encode documents into `Codes` and decode codes back into text."""

    def __init__(self, cfg: TokenizerConfig, bpe: BPE, model: IdeaAutoencoder | None = None):
        self.cfg = cfg
        self.bpe = bpe
        self.model = model if model is not None else build_model(cfg, bpe)
        self.segmentation = segmentation_of(cfg.data)

    @property
    def levels(self) -> int:
        return self.model.levels

    @property
    def codebook_sizes(self) -> list[int]:
        return list(self.model.quantizer.codebook_sizes)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- text -> codes ---------------------------------------------------------------------------
    def split(self, text: str) -> list[list[int]]:
        """Token ids of each idea of one document."""
        return segment_document(text, self.bpe, self.segmentation)

    @torch.no_grad()
    def encode_ideas(self, ideas: Sequence[Sequence[int]], batch_size: int = 512) -> torch.Tensor:
        """Codes of ideas given as token ids.

        Args:
            ideas: N token-id lists (non-empty).
            batch_size: ideas per forward pass.

        Returns:
            (N, L) int64 codes.
        """
        return self._map_ideas(ideas, self.model.encode, batch_size, torch.zeros((0, self.levels), dtype=torch.long))

    def idea_vectors(self, ideas: Sequence[Sequence[int]], batch_size: int = 512) -> torch.Tensor:
        """The encoder's continuous idea vectors (before quantization) of ideas given as token ids.

        Returns:
            (N, D) float vectors.
        """
        return self._map_ideas(ideas, self.model.embed, batch_size, torch.zeros((0, self.model.quantizer.dim)))

    def _map_ideas(self, ideas: Sequence[Sequence[int]], fn, batch_size: int, empty: torch.Tensor) -> torch.Tensor:
        """Apply `fn(tokens, mask) -> (B, ...)` to ideas in batches of similar length, in input order
        (`empty`: the result for no ideas, of the right width and dtype)."""
        self.model.eval()
        order = sorted(range(len(ideas)), key=lambda i: len(ideas[i]))  # similar lengths pad less
        out = [empty]
        for start in range(0, len(order), batch_size):
            tokens, mask = pad_ideas([ideas[i] for i in order[start : start + batch_size]], self.bpe.pad_id)
            out.append(fn(tokens.to(self.device), mask.to(self.device)).cpu())
        result = torch.cat(out)
        result[torch.as_tensor(order, dtype=torch.long)] = result.clone()
        return result

    def encode(self, texts: str | Sequence[str]) -> Codes:
        """Codes of documents.

        Args:
            texts: one document or a list of documents.

        Returns:
            Codes with ids (docs, max ideas, L) and mask (docs, max ideas).
        """
        docs = [texts] if isinstance(texts, str) else list(texts)
        ideas = [self.split(t) for t in docs]
        flat = self.encode_ideas([i for doc in ideas for i in doc])
        width = max((len(d) for d in ideas), default=0)
        ids = torch.zeros((len(docs), width, self.levels), dtype=torch.long)
        mask = torch.zeros((len(docs), width), dtype=torch.bool)
        for d, n in enumerate(len(x) for x in ideas):
            mask[d, :n] = True
        ids[mask] = flat
        return Codes(ids, mask, self.codebook_sizes)

    # -- codes -> text ---------------------------------------------------------------------------
    @torch.no_grad()
    def decode_to_ids(
        self,
        codes: Codes,
        levels: int | None = None,
        generation: GenerationConfig | None = None,
        batch_size: int = 512,
        seed: int = 0,
        known: Sequence[Sequence[Sequence[int]]] | None = None,
        passes: int = 1,
    ) -> list[list[list[int]]]:
        """Token ids of every idea, decoded from its first `levels` codes (all ideas batched).

        With a story context (`model.decoder.context` C > 0) an idea's decoder also reads the C ideas before
        it: by their tokens where their text is known, else by their codes (`context_codes`) or not at all.
        No idea waits for another's tokens within a pass, so a pass decodes all ideas in one batch. Later
        passes refine (Jacobi iteration): pass p knows the text every idea got in pass p - 1 and decodes again
        only the ideas whose earlier ideas changed, so idea t is final after t passes at most, and decoding
        stops once no text changes.

        Args:
            codes: codes of documents; only the first `levels` levels are read.
            levels: prefix depth k (None: every level the codes have).
            generation: decoding settings (default: the config's, greedy).
            batch_size: ideas per decoding batch.
            seed: seed for sampling (each pass draws the same numbers, so that a pass can repeat the last).
            known: per document, the token ids of its first ideas whose text is known (a prompt); they are
                returned as given, not decoded.
            passes: decoding passes at most (0: until nothing changes, the same result as decoding the
                ideas one after another); 1 without a story context.

        Returns:
            Per document, per idea, token ids.
        """
        return self.decode_stories(codes, levels, generation, batch_size, seed, known, passes)[0]

    @torch.no_grad()
    def decode_stories(
        self,
        codes: Codes,
        levels: int | None = None,
        generation: GenerationConfig | None = None,
        batch_size: int = 512,
        seed: int = 0,
        known: Sequence[Sequence[Sequence[int]]] | None = None,
        passes: int = 1,
        candidates: int = 1,
        pick: Pick | None = None,
    ) -> tuple[list[list[list[int]]], int]:
        """`decode_to_ids`, and the number of passes it took.

        With `candidates` n > 1, each pass decodes every idea n times (greedily, then n - 1 samples at
        temperature 0.7) and `pick(rows, candidates)` chooses one per idea: `rows` (R,) are the ideas' indices
        in `codes.flat()` order, `candidates` n lists of R token-id lists, greedy first; it returns (R,)
        indices. A later pass reads the chosen texts, so the text an idea keeps is the one its successors read.
        """
        if codes.levels > self.levels:
            raise ValueError(f"codes have {codes.levels} levels, this tokenizer has {self.levels}")
        k = codes.levels if levels is None else levels
        if not 1 <= k <= codes.levels:
            raise ValueError(f"levels must be in 1..{codes.levels}, got {k}")
        if passes < 0:
            raise ValueError(f"passes must be >= 0, got {passes}")
        gen = generation or self.cfg.generation
        self.model.eval()
        q = self.model.quantizer
        flat = codes.ids[..., :k][codes.mask].to(self.device)
        vectors = q.decode_indices(flat) if len(flat) else torch.zeros((0, q.dim), device=self.device)
        context = grid_previous(codes.mask, self.model.decoder.cfg.context).to(self.device)
        given = self._known_mask(codes, known)  # (N,) ideas whose text is known
        texts: list[list[int] | None] = [None] * len(flat)
        known_ideas = iter(list(ids) for doc in (known or []) for ids in doc)
        for i in given.nonzero().squeeze(1).tolist():
            texts[i] = next(known_ideas)
        todo = (~given).nonzero().squeeze(1).to(self.device)
        most = int(codes.mask.sum(1).max()) if codes.num_docs else 1
        limit = 1 if not self.model.decoder.cfg.context else min(passes or most, most)
        done, dirty = 0, todo  # a pass decodes only the ideas whose story changed in the pass before
        while len(dirty) and done < limit:
            again = self._decode_pass(dirty, context, vectors, texts, gen, batch_size, seed, candidates, pick)
            done += 1
            changed = torch.zeros(len(texts), dtype=torch.bool, device=self.device)
            for i, ids in zip(dirty.tolist(), again):
                changed[i] = texts[i] != ids
                texts[i] = ids
            ctx = context[todo]
            dirty = todo[((ctx >= 0) & changed[ctx.clamp(min=0)]).any(1)]
        out, pos = [], 0
        for n in codes.mask.sum(1).tolist():
            out.append([list(t) for t in texts[pos : pos + n]])
            pos += n
        return out, done

    def _decode_pass(
        self,
        rows: torch.Tensor,
        context: torch.Tensor,
        vectors: torch.Tensor,
        texts: list[list[int] | None],
        gen: GenerationConfig,
        batch_size: int,
        seed: int,
        candidates: int = 1,
        pick: Pick | None = None,
    ) -> list[list[int]]:
        """Decode `rows` (of the flat ideas) once, each reading the text its earlier ideas have in `texts`
        (`candidates` times, one kept by `pick`)."""
        model = self.model
        has_text = torch.tensor([t is not None for t in texts], dtype=torch.bool, device=self.device)
        tokens, mask = pad_ideas([t or [] for t in texts], self.bpe.pad_id)
        tokens, mask = tokens.to(self.device), mask.to(self.device)
        sampling = dataclasses.replace(gen, temperature=0.7, num_beams=1)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        found: list[list[list[int]]] = []
        for c in range(candidates):
            out: list[list[int]] = []
            for start in range(0, len(rows), batch_size):
                part = rows[start : start + batch_size]
                ctx = context[part]
                cond = model.decoder_condition(part, ctx, vectors, tokens, mask, has_text[ctx.clamp(min=0)])
                out.extend(generate(model.decoder, cond, gen if c == 0 else sampling, generator=generator).tokens)
            found.append(out)
        if candidates == 1 or pick is None:
            return found[0]
        chosen = pick(rows.cpu(), found).tolist()
        return [found[c][r] for r, c in enumerate(chosen)]

    def _known_mask(self, codes: Codes, known: Sequence[Sequence[Sequence[int]]] | None) -> torch.Tensor:
        """(N,) True at the ideas of `codes` (in `Codes.flat` order) whose text `known` gives."""
        if known is None:
            return torch.zeros(int(codes.mask.sum()), dtype=torch.bool)
        counts = codes.mask.sum(1)
        if len(known) != codes.num_docs or any(len(d) > int(n) for d, n in zip(known, counts)):
            raise ValueError("known texts must give at most as many ideas per document as the codes have")
        if any(len(ids) == 0 for doc in known for ids in doc):
            raise ValueError("a known idea has no tokens")
        lengths = torch.tensor([len(d) for d in known], dtype=torch.long)
        grid = torch.arange(codes.mask.shape[1])[None, :] < lengths[:, None]
        return grid[codes.mask]

    def decode_ideas(self, codes: Codes, levels: int | None = None, **kw) -> list[list[str]]:
        """Per document, the text of each idea decoded from its codes."""
        return [self.bpe.decode_batch(doc) for doc in self.decode_to_ids(codes, levels, **kw)]

    def decode(self, codes: Codes, levels: int | None = None, **kw) -> list[str]:
        """Per document, its text: the decoded ideas joined (ideas carry their own leading spaces)."""
        return [self.join(doc) for doc in self.decode_to_ids(codes, levels, **kw)]

    def join(self, ideas: Sequence[Sequence[int]]) -> str:
        """The text of one document's ideas (token ids), as `split` cut it."""
        return join_ideas(self.bpe, self.segmentation, ideas)

    # -- persistence -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        """Write config.yaml, tokenizer.json and model.safetensors, each atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(directory / CONFIG_FILE, to_yaml(self.cfg))
        self.bpe.save(directory / BPE_FILE)
        save_weights(self.model, directory / WEIGHTS_FILE)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> IdeaTokenizer:
        """Load a tokenizer saved by `save_pretrained` (or a training run directory).

        Raises:
            FileNotFoundError / ValueError: one line naming the missing or broken file.
        """
        directory = Path(directory)
        for name in (CONFIG_FILE, BPE_FILE, WEIGHTS_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory / name} not found: not a saved idea tokenizer")
        try:
            cfg = load_config(TokenizerConfig, directory / CONFIG_FILE)
        except ConfigError as e:
            raise ValueError(f"{directory / CONFIG_FILE}: {e}") from None
        tok = cls(cfg, BPE.load(directory / BPE_FILE))
        try:
            missing, unexpected = load_model(tok.model, directory / WEIGHTS_FILE, strict=False, device=str(device))
        except (SafetensorError, OSError, RuntimeError) as e:
            raise ValueError(f"{directory / WEIGHTS_FILE}: cannot load weights ({str(e).splitlines()[0]})") from None
        unexpected = [k for k in unexpected if k not in RETIRED_WEIGHTS]
        if missing or unexpected:
            raise ValueError(
                f"{directory / WEIGHTS_FILE} does not match {CONFIG_FILE}: "
                f"missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]}"
            )
        tok.model.to(device).eval()
        return tok


# Chooses one of several decoded candidates per idea: (rows (R,), candidates [n][R] token ids) -> (R,) indices.
Pick = Callable[[torch.Tensor, list[list[list[int]]]], torch.Tensor]


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


def build_model(cfg: TokenizerConfig, bpe: BPE) -> IdeaAutoencoder:
    """The network a config describes, sized to the BPE vocabulary."""
    special = SpecialIds(pad=bpe.pad_id, bos=bpe.bos_id, eos=bpe.eos_id)
    return IdeaAutoencoder(cfg.model, bpe.vocab_size, special)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
