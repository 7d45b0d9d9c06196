"""Byte-level BPE text tokenizer: a thin wrapper over Hugging Face ``tokenizers``.

Every byte is in the vocabulary, there is no normalizer and no BOS/EOS is added by
``encode`` (the model adds them), so ``decode(encode(s)) == s`` for any valid str.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from hiertok.atomic import atomic_write_text
from hiertok.errors import UserError

# 256 byte tokens plus our 3 special tokens.
_MIN_VOCAB = 256 + 3


class BPE:
    """Byte-level BPE tokenizer with ``<pad>``/``<bos>``/``<eos>`` at ids 0/1/2."""

    PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"

    def __init__(self, tokenizer: Tokenizer) -> None:
        """Wrap a ``tokenizers.Tokenizer`` (use ``train``/``load``/``from_str`` instead).

        Args:
            tokenizer: A tokenizer that has the three special tokens in its vocabulary.

        Raises:
            UserError: If a special token is missing.
        """
        missing = [t for t in (self.PAD, self.BOS, self.EOS) if tokenizer.token_to_id(t) is None]
        if missing:
            raise UserError(f"tokenizer lacks special tokens {missing}")
        # Special-token strings that occur in *text* must be encoded as ordinary bytes,
        # not as the special ids. This flag is not saved in tokenizer.json, so set it here.
        tokenizer.encode_special_tokens = True
        self._tok = tokenizer

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> BPE:
        """Train a tokenizer on a stream of texts.

        Args:
            texts: Training texts (consumed once; may be a generator).
            vocab_size: Target vocabulary size including bytes and special tokens (>= 259).
                The result can be smaller if the corpus has too few frequent pairs.
            min_frequency: Minimum count for a pair to be merged.

        Returns:
            The trained tokenizer.

        Raises:
            UserError: If ``vocab_size < 259`` or ``texts`` has no non-empty text.
        """
        if vocab_size < _MIN_VOCAB:
            raise UserError(f"vocab_size must be >= {_MIN_VOCAB} (256 bytes + 3 specials), got {vocab_size}")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=[cls.PAD, cls.BOS, cls.EOS],  # listed first, so ids 0, 1, 2
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        # tokenizers happily trains on nothing (bytes-only vocab), so count as we go.
        seen = [0]

        def counted() -> Iterator[str]:
            for text in texts:
                if text:
                    seen[0] += 1
                    yield text

        tok.train_from_iterator(counted(), trainer=trainer)
        if seen[0] == 0:
            raise UserError("cannot train BPE: no non-empty training texts")
        return cls(tok)

    def save(self, path: str | Path) -> None:
        """Write ``tokenizer.json`` atomically (`hiertok.atomic`).

        Args:
            path: Destination file.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, self._tok.to_str(pretty=True))

    @classmethod
    def load(cls, path: str | Path) -> BPE:
        """Read a tokenizer written by ``save``.

        Args:
            path: A ``tokenizer.json`` file.

        Returns:
            The tokenizer.

        Raises:
            UserError: If the file is missing, unreadable or not a valid tokenizer.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"cannot read tokenizer file {str(path)!r}: {e}") from e
        try:
            return cls.from_str(text)
        except ValueError as e:
            raise UserError(f"invalid tokenizer file {str(path)!r}: {e}") from e

    def to_str(self) -> str:
        """The tokenizer as a compact JSON string (for hashing or embedding in a checkpoint).

        Returns:
            The JSON string; ``from_str`` inverts it.
        """
        return self._tok.to_str()

    @classmethod
    def from_str(cls, s: str) -> BPE:
        """Rebuild a tokenizer from ``to_str`` output.

        Args:
            s: The JSON string.

        Returns:
            The tokenizer.

        Raises:
            UserError: If ``s`` is not a valid tokenizer.
        """
        try:
            tok = Tokenizer.from_str(s)
        except Exception as e:  # tokenizers raises a bare Exception on bad JSON
            raise UserError(f"not a valid tokenizer: {e}") from e
        return cls(tok)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no BOS/EOS added).

        Args:
            text: Any str that is valid Unicode.

        Returns:
            The token ids.

        Raises:
            UserError: If ``text`` contains a lone surrogate (not encodable as UTF-8).
        """
        try:
            return self._tok.encode(text).ids
        except TypeError:
            _check_utf8(text)
            raise

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of several texts (parallelized inside ``tokenizers``).

        Args:
            texts: The texts.

        Returns:
            One id list per text.

        Raises:
            UserError: If a text contains a lone surrogate.
        """
        try:
            return [e.ids for e in self._tok.encode_batch(list(texts))]
        except TypeError:
            for text in texts:
                _check_utf8(text)
            raise

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids; special ids are dropped.

        Args:
            ids: Token ids.

        Returns:
            The text.
        """
        return self._tok.decode(list(ids), skip_special_tokens=True)

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        """Text of several id sequences; special ids are dropped.

        Args:
            batch: Token id sequences.

        Returns:
            One text per sequence.
        """
        return self._tok.decode_batch([list(ids) for ids in batch], skip_special_tokens=True)

    @property
    def vocab_size(self) -> int:
        """Number of tokens, special tokens included."""
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def pad_id(self) -> int:
        """Id of ``<pad>`` (0 for a trained tokenizer)."""
        return self._tok.token_to_id(self.PAD)

    @property
    def bos_id(self) -> int:
        """Id of ``<bos>`` (1 for a trained tokenizer)."""
        return self._tok.token_to_id(self.BOS)

    @property
    def eos_id(self) -> int:
        """Id of ``<eos>`` (2 for a trained tokenizer)."""
        return self._tok.token_to_id(self.EOS)


def _check_utf8(text: str) -> None:
    """Raise a clear UserError if ``text`` can't be UTF-8 (tokenizers only says TypeError).

    Args:
        text: The text to check.

    Raises:
        UserError: If ``text`` is a str with a lone surrogate.
    """
    if not isinstance(text, str):
        return  # not our problem to explain: let the original TypeError through
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UserError(f"text is not valid Unicode: lone surrogate {text[e.start]!r} at index {e.start}") from None
