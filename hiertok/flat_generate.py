"""Text from the flat baseline LM, so that it can be set beside the hierarchy's: greedy, beam search or
sampling with the KV cache, through the same search code as the idea decoder (`decoder.generate`).

    gen = FlatGenerator.from_pretrained("runs/flat")
    print(gen.continue_text(["tom found a key."], sentences=4)[0])

A continuation ends when the LM ends the document, after `sentences` sentence ends, or after
`sentences * max_sentence_tokens` tokens, and is then cut to at most `sentences` sentences by the
tokenizer's own segmenter (a token that holds ".", "!" or "?" counts as a sentence end while writing, so an
abbreviation may end a continuation one sentence short).
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from pathlib import Path

import torch
from torch import Tensor

from decoder.generate import GenerationConfig, StopAfter, generate
from decoder.model import Condition, SpecialIds
from hiertok.data.bpe import BPE
from hiertok.data.ideas import Segmentation, segment_document
from hiertok.errors import UserError
from hiertok.flat_lm import FlatLM

SENTENCE_END = re.compile(r"[.!?]")


class FlatGenerator:
    """A trained flat LM with its BPE, callable as `decoder.generate` expects (an empty prefix)."""

    def __init__(self, lm: FlatLM, bpe: BPE, segmentation: Segmentation | None = None):
        self.lm, self.bpe = lm.eval(), bpe
        self.segmentation = segmentation or Segmentation()
        self.special = SpecialIds(pad=bpe.pad_id, bos=bpe.bos_id, eos=bpe.eos_id)
        self.ends = torch.tensor([bool(SENTENCE_END.search(bpe.decode([i]))) for i in range(bpe.vocab_size)])

    @classmethod
    def from_pretrained(cls, run_dir: str | Path, device: str | torch.device = "cpu") -> FlatGenerator:
        """Load a flat baseline run (`hiertok train baseline`) onto `device`, with its tokenizer's BPE and
        segmentation."""
        from hiertok.config import load_config
        from hiertok.flat_lm import load_baseline
        from hiertok.tokenizer import BPE_FILE, CONFIG_FILE, TokenizerConfig, segmentation_of

        lm, cfg = load_baseline(run_dir)
        tok_cfg = load_config(TokenizerConfig, Path(cfg.tokenizer) / CONFIG_FILE)
        return cls(lm.to(device), BPE.load(Path(cfg.tokenizer) / BPE_FILE), segmentation_of(tok_cfg.data))

    def __call__(self, tokens: Tensor, cond: Condition, cache=None):
        """Next-token logits of `tokens` (B, T) (the last position only with `cache`), and the new cache."""
        return self.lm.net(tokens, cache=cache, return_intermediates=True)

    @torch.no_grad()
    def continue_ideas(
        self,
        prompts: list[str],
        sentences: int,
        cfg: GenerationConfig | None = None,
        seed: int = 0,
        max_sentence_tokens: int = 64,
    ) -> list[list[str]]:
        """Per prompt, the sentences (ideas) the LM writes after it, at most `sentences` of them.

        Args:
            prompts: texts to continue (documents start with BOS, as in training).
            sentences: new sentences at most (>= 1).
            cfg: greedy (default), beam search (`num_beams`) or sampling (`temperature`, `top_k`, `top_p`);
                its `max_tokens` is replaced by the budget `sentences * max_sentence_tokens`.
            seed: sampling seed.
            max_sentence_tokens: token budget per sentence.

        Returns:
            Per prompt, its new sentences, each with its leading space (joined they give the continuation).
        """
        if sentences < 1:
            raise UserError(f"sentences must be >= 1, got {sentences}")
        cfg = dataclasses.replace(cfg or GenerationConfig(), max_tokens=sentences * max_sentence_tokens)
        starts = [[self.bpe.bos_id, *self.bpe.encode(p)] for p in prompts]
        by_length = defaultdict(list)  # one batch per prompt length: the start tokens of a batch are one tensor
        for i, ids in enumerate(starts):
            by_length[len(ids)].append(i)
        device = next(self.lm.parameters()).device
        stop = StopAfter(self.ends.to(device), sentences)
        generator = torch.Generator(device=device).manual_seed(seed)
        out: list[list[str]] = [[] for _ in prompts]
        for rows in by_length.values():
            start = torch.tensor([starts[i] for i in rows], device=device)
            empty = Condition(torch.zeros(len(rows), 0, 1, device=device))  # no prefix: the prompt is the start
            written = generate(self, empty, cfg, generator, start=start, stop=stop).tokens
            for i, ids in zip(rows, written):
                ideas = segment_document(self.bpe.decode(ids), self.bpe, self.segmentation, start=False)
                out[i] = [self.bpe.decode(idea) for idea in ideas[:sentences]]
        return out

    def continue_text(self, prompts: list[str], sentences: int, **kw) -> list[str]:
        """Per prompt, its continuation as one string (see `continue_ideas`)."""
        return ["".join(ideas) for ideas in self.continue_ideas(prompts, sentences, **kw)]
