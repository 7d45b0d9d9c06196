"""Configuration: dataclasses merged with a YAML file and `key=value` overrides (OmegaConf).

Each concern has its own dataclass next to the code that uses it; a stage's train config composes them.
YAML files hold only what differs from the defaults. Any unknown key or wrong type becomes one
`ConfigError` line that the CLI prints.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hiertok.data.video import VideoWorldConfig
from hiertok.errors import UserError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


class ConfigError(UserError):
    """A configuration problem, phrased as one line for the user."""


@dataclass
class DataConfig:
    """Where the text comes from and how it is cut into ideas."""

    # "synthetic" (the story world), a local .txt/.jsonl/.parquet file or directory, or a hub dataset; for frames,
    # "video" (the video world, `video`) or a .npy file of videos (B, T, H, W)
    source: str = "synthetic"
    seed: int = 0  # synthetic world: training stories use this seed, held-out stories seed + 1
    hub_config: str | None = None  # hub dataset config name
    split: str = "train"
    text_column: str = "text"
    streaming: bool = False  # stream the source through `datasets` instead of loading it into memory
    max_docs: int | None = None  # cap on training documents (None: all)
    eval_docs: int = 300  # held-out documents: the first N of a file source; a separate seed for synthetic
    synthetic_docs: int = 10000  # training documents of a built-in world (stories, or videos)
    video: VideoWorldConfig = field(default_factory=VideoWorldConfig)  # the video world's knobs
    segmenter: str = "sentence"  # sentence | chunk
    chunk_size: int = 16  # tokens per idea for the chunk segmenter
    max_chars: int = 400  # sentences longer than this are split (losslessly) into several ideas
    max_idea_tokens: int = 64  # ideas longer than this (in BPE tokens) are split into several ideas
    lead_space: bool = False  # a document's first idea is tokenized with a leading space (hiertok/data/ideas.py)
    vocab_size: int = 1024  # byte-level BPE vocabulary
    bpe_docs: int = 20000  # documents the BPE is trained on

    def validate(self) -> None:
        """Raise ConfigError with one line for document counts no run can use (0 held-out documents was a
        reshape error after training, `max_docs=0` silently meant no cap)."""
        for name in ("eval_docs", "synthetic_docs", "bpe_docs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_docs is not None and self.max_docs < 1:
            raise ConfigError(f"data.max_docs must be >= 1 (or null: no cap), got {self.max_docs}")


@dataclass
class TrainConfig:
    """The optimisation loop shared by every stage."""

    seed: int = 0
    batch_size: int = 64  # per process, per micro-step
    grad_accum: int = 1
    lr: float = 2e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    warmup_steps: int = 100
    max_steps: int = 2000
    stop_at_step: int | None = None  # leave the run unfinished here (checkpointed), e.g. to fit a job slot
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    mixed_precision: str = "no"  # no | bf16 | fp16
    bucket_pool: int = 1  # >1: this many global batches sorted by length together (less padding); 1 = random
    eval_every: int = 500
    eval_ideas: int = 512  # held-out items per periodic evaluation: ideas (tokenizer), windows (planner, flat LM)
    save_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 25
    log_with: str | None = None  # an Accelerate tracker, e.g. "tensorboard"
    num_threads: int | None = None  # torch CPU threads (None: torch's default)
    progress: bool = True  # tqdm progress bar

    def validate(self) -> None:
        """Raise ConfigError with one line for settings the loop cannot run with (before a run directory exists)."""
        if self.mixed_precision == "False":  # YAML reads a bare `no` as false, which a str field holds as "False"
            self.mixed_precision = "no"
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ConfigError(f"train.mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}")
        at_least_one = ("batch_size", "grad_accum", "max_steps", "eval_every", "eval_ideas", "save_every")
        for name in (*at_least_one, "keep_checkpoints", "log_every", "bucket_pool"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name, value in (("stop_at_step", self.stop_at_step), ("num_threads", self.num_threads)):
            if value is not None and value < 1:
                raise ConfigError(f"train.{name} must be >= 1 (or null), got {value}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}")
        for name in ("weight_decay", "grad_clip", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"train.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"train.betas must be two numbers in [0, 1), got {list(self.betas)}")


def load_config(schema: type[T], path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Merge `schema`'s defaults, a YAML file and dotlist overrides into a typed dataclass.

    Args:
        schema: the dataclass type that defines every key.
        path: optional YAML file with values that differ from the defaults.
        overrides: `key=value` strings (nested keys with dots, e.g. `train.lr=3e-4`).

    Returns:
        An instance of `schema`.

    Raises:
        ConfigError: a missing file, bad YAML, an unknown key, a wrong type or a malformed override.
    """
    try:
        merged = _defaults(schema)  # every merge below copies: the cached defaults are never changed
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise ConfigError(f"config file not found: {path}")
            loaded = OmegaConf.load(path)
            if not isinstance(loaded, DictConfig):  # a YAML list: merging it into the defaults is a TypeError
                raise ConfigError(f"{path}: a config file holds keys and values, not a list")
            merged = OmegaConf.merge(merged, loaded)
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ConfigError(f"override {bad[0]!r} is not of the form key=value")
        merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except ConfigError:
        raise
    except OmegaConfBaseException as e:
        raise ConfigError(_one_line(e)) from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:  # YAML syntax errors, bytes that are not text
        raise ConfigError(f"could not read config {path}: {_one_line(e)}") from None


@functools.cache
def _defaults(schema: type) -> DictConfig:
    """`schema`'s defaults as an OmegaConf config, built once per class: building it takes about 20 ms (most of
    a `load_config`), and `OmegaConf.merge` copies it."""
    return OmegaConf.structured(schema)


def split_planner_overrides(overrides: list[str] | tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Overrides for a tokenizer and a planner trained together: `planner.KEY=VALUE` ones go to the planner
    (without the prefix), the others to the tokenizer.

    Returns:
        (tokenizer overrides, planner overrides), each in the given order.
    """
    tokenizer = [o for o in overrides if not o.startswith("planner.")]
    planner = [o.removeprefix("planner.") for o in overrides if o.startswith("planner.")]
    return tokenizer, planner


def parse_device(name: str) -> torch.device:
    """A torch device by name ("cpu", "cuda", "cuda:1", "mps"); UserError (one line) if unknown or absent here."""
    import torch  # here, not at the top: the CLI reads configs before it needs torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: try cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r}: this torch has no CUDA device")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device {name!r}: only {torch.cuda.device_count()} CUDA devices here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r}: MPS is not available here")
    return device


def to_yaml(cfg: Any) -> str:
    """The resolved config as YAML text (what a run directory stores)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def _one_line(e: Exception) -> str:
    """OmegaConf errors span several lines with a `full_key:` line; keep the message and the key."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    key = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("full_key:")), "")
    head = lines[0] if lines else type(e).__name__
    return f"{head} (key: {key})" if key and key not in head else head


__all__ = ["ConfigError", "DataConfig", "TrainConfig", "load_config", "to_yaml", "field"]
