"""Building blocks every training stage shares: run directory, Accelerator, optimizer and schedule,
batches addressed by step, atomic checkpoints with exact resume, and metrics.jsonl logging.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import ProjectConfiguration, set_seed
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from hiertok.atomic import atomic_write, atomic_write_text
from hiertok.config import TrainConfig, to_yaml
from hiertok.errors import UserError

CHECKPOINT_DIR = "checkpoints"
CONFIG_FILE = "config.yaml"  # every run directory: its resolved config
WEIGHTS_FILE = "model.safetensors"  # and its trained weights
METRICS_FILE = "metrics.jsonl"


def save_weights(model: nn.Module, path: Path) -> None:
    """Write a model's weights as safetensors atomically: a temporary file in the same directory, then renamed."""
    atomic_write(path, lambda tmp: save_model(model, tmp))


def load_weights(model: nn.Module, path: Path, retired: Collection[str] = ()) -> None:
    """Load a run's safetensors weights into `model`, refusing what would give wrong answers in silence.

    Args:
        model: the network its config describes.
        path: the weights file.
        retired: names of weights older runs saved that the model no longer has (ignored).

    Raises:
        UserError: one line naming `path`: unreadable, not the config's shapes or names, or values that are not
            finite (NaN / inf weights would encode to garbage codes with exit 0).
    """
    try:
        missing, unexpected = load_model(model, path, strict=False)
    except (SafetensorError, OSError, RuntimeError) as e:
        raise UserError(f"{path}: cannot load weights ({str(e).splitlines()[0]})") from None
    unexpected = [k for k in unexpected if k not in retired]
    if missing or unexpected:
        raise UserError(
            f"{path}: weights do not match the config (missing {list(missing)[:3]}, unexpected {unexpected[:3]})"
        )
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise UserError(f"{path}: weights hold NaN or infinite values ({', '.join(bad[:3])}): the run is broken")


class RunDirError(UserError):
    """The run directory cannot be used as asked (exists without --resume, unwritable, ...)."""


def prepare_run_dir(run_dir: Path, cfg: Any, resume: bool) -> None:
    """Create the run directory and write config.yaml; refuse to clobber a run unless resuming.

    Args:
        run_dir: output directory.
        cfg: the resolved config dataclass.
        resume: continue a run that exists in `run_dir`.

    Raises:
        ConfigError: train settings the loop cannot run with (checked before anything is written).
        RunDirError: a run exists and `resume` is False, or the directory cannot be written.
    """
    cfg.train.validate()
    has_run = (run_dir / CHECKPOINT_DIR).is_dir() or (run_dir / METRICS_FILE).exists()
    if has_run and not resume:
        raise RunDirError(f"{run_dir} already holds a run: pass --resume to continue it or choose another --out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"  # one per process: ranks probe the same directory at once
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise RunDirError(f"cannot write to {run_dir}: {e.strerror or e}") from None
    new = to_yaml(cfg)
    old_path = run_dir / CONFIG_FILE
    if resume and old_path.exists() and _without_budget(old_path.read_text()) != _without_budget(new):
        raise RunDirError(f"{old_path} differs from the config given: resume with the same config")
    atomic_write_text(old_path, new)  # every rank writes the same text, each through its own temporary file


def _without_budget(yaml_text: str) -> str:
    # Resuming may extend a run: the step budget and logging cadence may change, nothing else.
    skip = ("max_steps:", "stop_at_step:", "progress:", "log_every:", "num_threads:")
    return "\n".join(line for line in yaml_text.splitlines() if not line.strip().startswith(skip))


def make_accelerator(cfg: TrainConfig, run_dir: Path) -> Accelerator:
    """The Accelerator of a run. Create it before the model: VQ's codebook sync is decided at first use."""
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    # Accelerate keeps one process-wide state and refuses a second Accelerator with another mixed
    # precision; runs started one after another in one process (ablations, tests) each need their own.
    # The process group (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    acc = Accelerator(
        mixed_precision=cfg.mixed_precision,
        log_with=cfg.log_with,
        project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "logs")),
    )
    set_seed(cfg.seed)
    return acc


def end_stage(acc: Accelerator) -> None:
    """Wait for every process and close the run's trackers; the process group stays.

    The process group is left by the program's entry point (`hiertok.cli.main`) once the stages have returned:
    destroyed here, while the stage's DDP model still held it, a gloo worker now and then hung in C++ teardown
    after all its work was done (about 1 in 30 two-process runs on a loaded 2-core machine).
    """
    acc.wait_for_everyone()
    for tracker in acc.trackers:
        tracker.finish()


def make_optimizer(
    model: nn.Module, cfg: TrainConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no weight decay on biases, norms and 1-d parameters) with linear warmup and cosine decay."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=tuple(cfg.betas),
    )
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    """Multiplier of the base LR at an optimizer step: linear warmup, then cosine to min_lr_ratio."""

    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        span = max(1, cfg.max_steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


class StepBatches:
    """Index batches addressed by (optimizer step, micro-step): a seeded permutation per epoch.

    Written by hand rather than with a prepared DataLoader: random access by step gives an exact resume
    without replaying the loader, and the same global batches for any number of processes (each takes
    its slice), which is what makes 1- and 2-process runs comparable.

    With `lengths`, batches are length-bucketed (as fairseq and others do): each pool of `pool` consecutive
    global batches of the permutation is sorted by length, cut into batches, and the batches are shuffled
    within the pool. Every item is still seen once per epoch, but a batch holds ideas of similar length, so
    little compute goes to padding (on TinyStories a random batch of 64 pads to 3x the mean length).
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
        lengths: np.ndarray | None = None,
        pool: int = 1,
    ):
        if num_items < batch_size * world:
            raise UserError(f"only {num_items} training ideas for a global batch of {batch_size * world}")
        if lengths is not None and len(lengths) != num_items:
            raise ValueError(f"{len(lengths)} lengths for {num_items} items")  # a bug, not bad input
        self.num_items, self.batch_size, self.seed, self.rank, self.world = num_items, batch_size, seed, rank, world
        self.global_batch = batch_size * world
        self.per_epoch = num_items // self.global_batch
        self.lengths = lengths
        self.pool = max(1, pool) if lengths is not None else 1
        self._perm: tuple[int, np.ndarray] | None = None
        self._pooled: tuple[tuple[int, int], np.ndarray] | None = None

    def _epoch_perm(self, epoch: int) -> np.ndarray:
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.num_items))
        return self._perm[1]

    def _global_batch(self, epoch: int, offset: int) -> np.ndarray:
        """(global_batch,) item indices of batch `offset` of `epoch`."""
        perm = self._epoch_perm(epoch)
        if self.pool == 1:
            return perm[offset * self.global_batch : (offset + 1) * self.global_batch]
        pool_id, within = divmod(offset, self.pool)
        if self._pooled is None or self._pooled[0] != (epoch, pool_id):
            first = pool_id * self.pool
            count = min(self.pool, self.per_epoch - first)
            items = perm[first * self.global_batch : (first + count) * self.global_batch]
            items = items[np.argsort(self.lengths[items], kind="stable")].reshape(count, self.global_batch)
            order = np.random.default_rng([self.seed, epoch, pool_id, 1]).permutation(count)
            self._pooled = ((epoch, pool_id), items[order])
        return self._pooled[1][within]

    def indices(self, micro_step: int) -> np.ndarray:
        """This process's item indices for global micro-step `micro_step`."""
        epoch, offset = divmod(micro_step, self.per_epoch)
        batch = self._global_batch(epoch, offset)
        return batch[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]


class Checkpoints:
    """Accelerate `save_state` checkpoints under run_dir/checkpoints/step_XXXXXXXX, written atomically.

    A checkpoint is saved into a temporary directory and renamed into place when complete, so a crash
    during saving leaves the previous checkpoint as the latest one.
    """

    def __init__(self, accelerator: Accelerator, run_dir: Path, keep: int):
        self.acc, self.root, self.keep = accelerator, run_dir / CHECKPOINT_DIR, keep

    def all(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and p.name.startswith("step_"))

    def save(self, step: int) -> Path:
        final = self.root / f"step_{step:08d}"
        tmp = self.root / f".tmp_step_{step:08d}"
        if self.acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        self.acc.wait_for_everyone()
        self.acc.save_state(str(tmp))
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            (tmp / "step.json").write_text(json.dumps({"step": step}))
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            for old in self.all()[: -self.keep] if self.keep > 0 else []:
                shutil.rmtree(old, ignore_errors=True)
        self.acc.wait_for_everyone()
        return final

    def resume(self) -> int:
        """Load the latest complete checkpoint; return the step to continue from (0 if none)."""
        ckpts = [p for p in self.all() if (p / "step.json").exists()]
        if not ckpts:
            return 0
        latest = ckpts[-1]
        try:
            self.acc.load_state(str(latest))
        except Exception as e:  # noqa: BLE001 - any failure to load is reported with the path
            raise RunDirError(f"checkpoint {latest} cannot be loaded: {str(e).splitlines()[0]}") from None
        return int(json.loads((latest / "step.json").read_text())["step"])


class MetricsLog:
    """Appends one JSON object per line to run_dir/metrics.jsonl (main process) and to trackers."""

    def __init__(self, accelerator: Accelerator, run_dir: Path):
        self.acc, self.path = accelerator, run_dir / METRICS_FILE
        self.start = time.perf_counter()

    def log(self, step: int, split: str, values: dict[str, float]) -> None:
        record = {"step": step, "split": split, "time_s": round(time.perf_counter() - self.start, 2)}
        record.update({k: _plain(v) for k, v in values.items()})
        if self.acc.is_main_process:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        if self.acc.log_with:
            self.acc.log({f"{split}/{k}": v for k, v in record.items() if isinstance(v, (int, float))}, step=step)

    def truncate_after(self, step: int) -> None:
        """Drop records past `step` (written after the checkpoint a resumed run restarts from)."""
        if self.acc.is_main_process and self.path.exists():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            kept = [ln for ln in lines if ln.strip() and json.loads(ln).get("step", 0) <= step]
            self.path.write_text("".join(ln + "\n" for ln in kept), encoding="utf-8")


def train_seconds(run_dir: Path) -> float | None:
    """Seconds a run spent in optimizer steps: `train_s` of its last train record (0 if none yet; None when
    the run has no metrics log, i.e. unknown).

    Logs written before `train_s` existed give the last record's wall time `time_s` instead.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return None
    seconds = 0.0
    for ln in path.read_text(encoding="utf-8").splitlines():
        if ln.strip():
            r = json.loads(ln)
            seconds = r.get("train_s", r.get("time_s", seconds)) if r.get("split") == "train" else seconds
    return float(seconds)


def _plain(v: Any) -> Any:
    if torch.is_tensor(v):
        v = v.item()
    return round(v, 6) if isinstance(v, float) else v


@dataclass
class Averager:
    """Running means of scalar metrics between log lines."""

    sums: dict[str, float]
    count: int = 0

    @classmethod
    def new(cls) -> Averager:
        return cls({})

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.count += 1

    def pop(self) -> dict[str, float]:
        out = {k: v / max(1, self.count) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return out


def mean_over_processes(acc: Accelerator, values: dict[str, float]) -> dict[str, float]:
    """Each metric averaged over all processes: what a one-process run over the same global batch logs."""
    if acc.num_processes == 1:
        return values
    keys = sorted(values)
    means = acc.reduce(torch.tensor([values[k] for k in keys], dtype=torch.float64, device=acc.device), "mean")
    return dict(zip(keys, means.tolist()))


def replica_divergence(acc: Accelerator, model: torch.nn.Module) -> float:
    """Largest absolute difference between any process's parameters and buffers and the main process's.

    DDP keeps parameters equal; buffers (VQ codebooks and their EMA statistics) stay equal only when the
    quantizer syncs them, so a multi-process run records this at its end. 0.0 with one process.
    """
    if acc.num_processes == 1:
        return 0.0
    import torch.distributed as dist

    worst = torch.zeros((), dtype=torch.float64, device=acc.device)
    for t in acc.unwrap_model(model).state_dict().values():
        mine = t.detach().double()
        main = mine.clone()
        dist.broadcast(main, src=0)
        if mine.numel():
            worst = torch.maximum(worst, (mine - main).abs().max())
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    return float(worst)


def micro_batches(step: int, accum: int) -> Iterator[int]:
    """Global micro-step numbers of one optimizer step."""
    return iter(range(step * accum, (step + 1) * accum))
