"""`IdeaTokenizer`: text (or video frames) <-> multi-level idea codes, with save_pretrained / from_pretrained.

A saved tokenizer is a directory holding `config.yaml` (the resolved training config), `tokenizer.json` (the
byte-level BPE; a video run has `pixels.json` in its place: hiertok/data/pixels.py) and `model.safetensors`
(weights and quantizer buffers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from decoder.generate import GenerationConfig
from decoder.model import SpecialIds
from hiertok.atomic import atomic_write_text
from hiertok.autoencoder import IdeaAutoencoder, ModelConfig
from hiertok.checks import check_text
from hiertok.codes import Codes
from hiertok.config import ConfigError, DataConfig, TrainConfig, load_config, to_yaml
from hiertok.data.bpe import BPE
from hiertok.data.ideas import Segmentation, join_ideas, pad_ideas, segment_document
from hiertok.data.pixels import PIXELS_FILE, PixelVocab
from hiertok.data.video_files import check_videos
from hiertok.errors import UserError
from hiertok.frame_search import search_frames
from hiertok.story_decoding import decode_stories
from hiertok.training import CONFIG_FILE, WEIGHTS_FILE, load_weights, save_weights

BPE_FILE = "tokenizer.json"
MAX_SEARCH_PIXELS = 16  # generation.search_pixels at most
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
    """Encode documents into `Codes` and decode codes back into text (or videos into codes and back, for a run
    trained on frames)."""

    def __init__(self, cfg: TokenizerConfig, bpe: BPE | PixelVocab, model: IdeaAutoencoder | None = None):
        self.cfg = cfg
        self.bpe = bpe
        self.model = model if model is not None else build_model(cfg, bpe)
        self.segmentation = segmentation_of(cfg.data)
        if cfg.generation.search_pixels and not self.is_video:
            raise UserError("generation.search_pixels searches a frame's pixels: this run is trained on text")

    @property
    def levels(self) -> int:
        return self.model.levels

    @property
    def codebook_sizes(self) -> list[int]:
        return list(self.model.quantizer.codebook_sizes)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def is_video(self) -> bool:
        """Whether the run was trained on video frames (its ideas are frames, not text)."""
        return isinstance(self.bpe, PixelVocab)

    def _text_only(self) -> None:
        if self.is_video:
            raise UserError("this tokenizer run was trained on video frames: use encode_frames / decode_frames")

    def _video_only(self) -> None:
        if not self.is_video:
            raise UserError("this tokenizer run was trained on text: use encode / decode")

    def require_text(self, what: str) -> None:
        """A one-line UserError for `what` (a command's text-only work) on a video run."""
        if self.is_video:
            raise UserError(f"this run was trained on video frames, and {what} is built for text runs only so far")

    # -- text -> codes ---------------------------------------------------------------------------
    def split(self, text: str) -> list[list[int]]:
        """Token ids of each idea of one document."""
        self._text_only()
        return segment_document(text, self.bpe, self.segmentation)

    def encode_ideas(self, ideas: Sequence[Sequence[int]], batch_size: int = 512) -> torch.Tensor:
        """Codes of ideas given as token ids.

        Args:
            ideas: N token-id lists (non-empty).
            batch_size: ideas per forward pass.

        Returns:
            (N, L) int64 codes.
        """
        self._check_ideas(ideas)
        with torch.no_grad():
            codes = self._map_ideas(
                ideas, self.model.encode, batch_size, torch.zeros((0, self.levels), dtype=torch.long)
            )
        sizes = torch.tensor(self.codebook_sizes)
        if len(codes) and not ((codes >= 0) & (codes < sizes)).all():  # NaN activations quantize to garbage
            raise UserError("the encoder gave codes out of range (non-finite activations): the run is broken")
        return codes

    def _check_ideas(self, ideas: Sequence[Sequence[int]]) -> None:
        """TypeError / UserError (one line) for ideas that are not non-empty sequences of this vocabulary's ids."""
        vocab = self.bpe.vocab_size
        for n, ids in enumerate(ideas):
            if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
                raise TypeError(f"idea {n} must be a list of token ids, got {type(ids).__name__}")
            if len(ids) == 0:
                raise UserError(f"idea {n} has no tokens")
            arr = np.asarray(ids)
            if arr.ndim != 1 or arr.dtype.kind not in "iu":
                raise TypeError(f"idea {n} must be a list of integer token ids")
            if arr.min() < 0 or arr.max() >= vocab:
                raise UserError(f"idea {n} holds token ids outside this vocabulary (0..{vocab - 1})")

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
            # Widths rounded up to a multiple of 8: a long encode meets a few shapes, not one per batch, which
            # otherwise fragments the allocator's heap (memory grew with the input; experiments/README.md).
            extra = -tokens.shape[1] % 8
            tokens, mask = F.pad(tokens, (0, extra), value=self.bpe.pad_id), F.pad(mask, (0, extra), value=False)
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
        self._text_only()
        docs = [texts] if isinstance(texts, str) else list(texts)
        for n, doc in enumerate(docs):
            check_text(f"document {n}", doc)
        ideas = [self.split(t) for t in docs]
        flat = self.encode_ideas([i for doc in ideas for i in doc])
        return Codes.from_flat(flat, [len(d) for d in ideas], self.codebook_sizes)

    # -- codes -> text ---------------------------------------------------------------------------
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
        it, and later passes refine what earlier ones wrote (hiertok/story_decoding.py).

        Args:
            codes: codes of documents; only the first `levels` levels are read.
            levels: prefix depth k (None: every level the codes have).
            generation: decoding settings (default: the config's, greedy).
            batch_size: ideas per decoding batch.
            seed: seed for sampling.
            known: per document, the token ids of its first ideas whose text is known (a prompt); they are
                returned as given, not decoded.
            passes: decoding passes at most (0: until nothing changes, the same result as decoding the
                ideas one after another); 1 without a story context.

        Returns:
            Per document, per idea, token ids.
        """
        return self.decode_stories(codes, levels, generation, batch_size, seed, known, passes)[0]

    def decode_stories(self, codes: Codes, *args, **kw) -> tuple[list[list[list[int]]], int]:
        """`decode_to_ids`, with candidates per idea (`story_decoding.decode_stories`), and the number of
        decoding passes it took."""
        if not isinstance(codes, Codes):
            raise TypeError(
                f"codes must be a hiertok.codes.Codes (Codes.from_lists(docs, tok.codebook_sizes)), got "
                f"{type(codes).__name__}"
            )
        return decode_stories(self, codes, *args, **kw)

    def decode_ideas(self, codes: Codes, levels: int | None = None, **kw) -> list[list[str]]:
        """Per document, the text of each idea decoded from its codes."""
        return [self.bpe.decode_batch(doc) for doc in self.decode_to_ids(codes, levels, **kw)]

    def decode(self, codes: Codes, levels: int | None = None, **kw) -> list[str]:
        """Per document, its text: the decoded ideas joined (ideas carry their own leading spaces)."""
        return [self.join(doc) for doc in self.decode_to_ids(codes, levels, **kw)]

    def join(self, ideas: Sequence[Sequence[int]]) -> str:
        """The text of one document's ideas (token ids), as `split` cut it."""
        self._text_only()
        return join_ideas(self.bpe, self.segmentation, ideas)

    # -- frames <-> codes (a video run) ------------------------------------------------------------
    def encode_frames(self, videos: np.ndarray) -> Codes:
        """Codes of videos, one idea per frame.

        Args:
            videos: (B, T, H, W) or one (T, H, W) video of integer colour indices.

        Returns:
            Codes with ids (B, T, L).
        """
        self._video_only()
        videos = check_videos(videos, self.bpe)
        ids = self.bpe.encode(videos)  # (B, T, H * W)
        flat = self.encode_ideas([frame.tolist() for video in ids for frame in video])
        return Codes.from_flat(flat, [videos.shape[1]] * len(videos), self.codebook_sizes)

    def decode_frames(
        self, codes: Codes, levels: int | None = None, search_pixels: int | None = None, **kw
    ) -> np.ndarray:
        """Videos decoded from their codes (as `decode_to_ids`, whose settings `kw` takes).

        Args:
            codes: codes of videos; only the first `levels` levels are read (None: all).
            search_pixels: m > 0 checks each frame decoded from every level by encoding it again and, where it does
                not encode back to its codes, searches its m least sure pixels (hiertok/frame_search.py); None: the
                run's `generation.search_pixels`. A coarse prefix leaves most frames short of their codes, each a
                search of 2^m encodings for little: frames decoded from fewer levels are not searched.

        Returns:
            (B, T, H, W) uint8 colour indices (every video must have the same number of frames).
        """
        self._video_only()
        docs = self.decode_ideas(codes, levels, **kw)
        if len({len(d) for d in docs}) > 1:
            raise UserError(f"videos of different lengths ({sorted({len(d) for d in docs})} frames) in one batch")
        if not docs or not docs[0]:
            return np.zeros((len(docs), 0, self.bpe.height, self.bpe.width), dtype=np.uint8)
        videos = np.stack([np.stack(d) for d in docs])
        m = self.cfg.generation.search_pixels if search_pixels is None else search_pixels
        if not 0 <= m <= MAX_SEARCH_PIXELS:  # 2^m candidates a frame: past 16 a search would not end
            raise UserError(f"search_pixels must be in 0..{MAX_SEARCH_PIXELS}, got {m}")
        k = codes.levels if levels is None else levels
        if m == 0 or k < self.levels:
            return videos
        if not self.model.decoder.cfg.parallel:
            raise UserError("searching a frame's pixels needs a decoder that writes a frame at once (parallel)")
        flat = codes.ids[..., :k][codes.mask]  # (N, k) in the frames' order
        frames = search_frames(self, flat, videos.reshape(-1, *videos.shape[2:]), m)
        return frames.reshape(videos.shape)

    # -- persistence -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        """Write config.yaml, tokenizer.json and model.safetensors, each atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(directory / CONFIG_FILE, to_yaml(self.cfg))
        self.bpe.save(directory / (PIXELS_FILE if self.is_video else BPE_FILE))
        save_weights(self.model, directory / WEIGHTS_FILE)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> IdeaTokenizer:
        """Load a tokenizer saved by `save_pretrained` (or a training run directory).

        Raises:
            FileNotFoundError / UserError: one line naming the missing or broken file.
        """
        directory = Path(directory)
        config = directory / CONFIG_FILE
        vocab = vocabulary_file(directory)
        if config.is_file() and not (directory / vocab).is_file() and _records_a_tokenizer(config):
            raise UserError(
                f"{directory} is a planner or flat LM run, not an idea tokenizer run: pass the tokenizer run it was "
                f"trained on (its {CONFIG_FILE} records it as `tokenizer`)"
            )
        for name in (CONFIG_FILE, vocab, WEIGHTS_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory / name} not found: not a saved idea tokenizer")
        try:
            cfg = load_config(TokenizerConfig, directory / CONFIG_FILE)
        except ConfigError as e:
            raise UserError(f"{directory / CONFIG_FILE}: {e}") from None
        tok = cls(cfg, (PixelVocab if vocab == PIXELS_FILE else BPE).load(directory / vocab))
        load_weights(tok.model, directory / WEIGHTS_FILE, RETIRED_WEIGHTS)  # then .to(device)
        tok.model.to(device).eval()
        return tok


def vocabulary_file(directory: str | Path) -> str:
    """The name of a tokenizer run's vocabulary file: a video run's pixels.json, else the BPE's tokenizer.json."""
    return PIXELS_FILE if (Path(directory) / PIXELS_FILE).is_file() else BPE_FILE


def _records_a_tokenizer(config: Path) -> bool:
    """Whether a run's config names the tokenizer run it was trained on (planner and flat LM runs do)."""
    try:
        return any(line.startswith("tokenizer:") for line in config.read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return False


def build_model(cfg: TokenizerConfig, bpe: BPE | PixelVocab) -> IdeaAutoencoder:
    """The network a config describes, sized to the vocabulary."""
    special = SpecialIds(pad=bpe.pad_id, bos=bpe.bos_id, eos=bpe.eos_id)
    return IdeaAutoencoder(cfg.model, bpe.vocab_size, special)
