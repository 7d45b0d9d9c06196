"""One training stage, set up the same way for every trainer (tokenizer, planner, flat baseline).

A trainer builds its data and its module, then hands them here: the optimizer and its schedule, Accelerate's
preparation, the trackers (given the run's resolved config), checkpoints, the metrics log and the resume point
are made once, in one place, so the stages cannot drift apart. The trainer keeps only what differs: the loss of
a micro-batch, the held-out evaluation, and how the finished model is saved.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from torch import nn

from hiertok.config import TrainConfig
from hiertok.loop import LoopResult, LossFn, run_steps
from hiertok.training import Checkpoints, MetricsLog, end_stage, make_optimizer


def tracker_config(cfg: Any) -> dict[str, int | float | str | bool]:
    """A run's config as the flat `section.key` -> scalar dict trackers take (other values as text)."""
    out: dict[str, int | float | str | bool] = {}

    def walk(prefix: str, value: Any) -> None:
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                walk(f"{prefix}.{f.name}" if prefix else f.name, getattr(value, f.name))
        else:
            out[prefix] = value if isinstance(value, int | float | str | bool) else str(value)

    walk("", cfg)
    return out


@dataclass
class Stage:
    """A prepared stage: `model` is the module Accelerate wraps; steps run from `start` (0, or the resume point)."""

    acc: Accelerator
    model: nn.Module
    optimizer: Any
    scheduler: Any
    train: TrainConfig
    checkpoints: Checkpoints
    log: MetricsLog
    start: int
    name: str
    seconds: float = 0.0
    result: LoopResult | None = None

    @classmethod
    def prepare(
        cls, acc: Accelerator, module: nn.Module, cfg: Any, train: TrainConfig, run_dir: Path, resume: bool, name: str
    ) -> Stage:
        """Optimizer, preparation, trackers, checkpoints and log for `module`, resumed when asked.

        Args:
            acc: the run's Accelerator (`make_accelerator`).
            module: the model to train (not yet prepared).
            cfg: the run's resolved config (given to the trackers).
            train: its training settings.
            run_dir: the run directory (already prepared).
            resume: continue from the latest checkpoint.
            name: the stage's name (progress bar, tracker project "hiertok-NAME").
        """
        optimizer, scheduler = make_optimizer(module, train)
        model, optimizer = acc.prepare(module, optimizer)
        acc.register_for_checkpointing(scheduler)
        if acc.log_with:
            acc.init_trackers(f"hiertok-{name}", config=tracker_config(cfg))
        checkpoints, log = Checkpoints(acc, run_dir, train.keep_checkpoints), MetricsLog(acc, run_dir)
        start = checkpoints.resume() if resume else 0
        log.truncate_after(start)
        return cls(acc, model, optimizer, scheduler, train, checkpoints, log, start, name)

    def run(self, loss_fn: LossFn, eval_fn: Callable[[], dict[str, float]]) -> LoopResult:
        """Optimizer steps from `start` (see `hiertok.loop.run_steps`); `seconds` is their wall time."""
        t0 = time.perf_counter()
        self.result = run_steps(
            self.acc,
            self.model,
            self.optimizer,
            self.scheduler,
            self.train,
            loss_fn,
            eval_fn,
            self.checkpoints,
            self.log,
            self.start,
            self.name,
        )
        self.seconds = time.perf_counter() - t0
        return self.result

    def finish(self, save: Callable[[nn.Module], None]) -> None:
        """Save the unwrapped model (main process, finished runs only: an unfinished run keeps its checkpoint)
        and close the stage."""
        if self.result is not None and self.result.finished and self.acc.is_main_process:
            save(self.acc.unwrap_model(self.model))
        end_stage(self.acc)
