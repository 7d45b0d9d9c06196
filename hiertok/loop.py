"""The optimizer-step loop every stage runs: accumulation, clipping, logging, periodic eval, checkpoints, stop.

A stage supplies what differs: the loss of one micro-batch and its held-out evaluation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

from accelerate import Accelerator
from torch import Tensor, nn
from tqdm.auto import tqdm

from hiertok.atomic import atomic_write_text
from hiertok.config import TrainConfig
from hiertok.training import (
    Averager,
    Checkpoints,
    MetricsLog,
    mean_over_processes,
    micro_batches,
    replica_divergence,
    train_seconds,
)

# micro_step -> (loss to backpropagate, scalar values to log)
LossFn = Callable[[int], tuple[Tensor, dict[str, float]]]


@dataclass
class LoopResult:
    """Where the loop stopped and the last held-out evaluation."""

    steps: int
    finished: bool  # reached max_steps (False when stopped by train.stop_at_step)
    last_eval: dict[str, float] = field(default_factory=dict)


# Tests set this to a file path: after each checkpoint the run writes the step there and waits to be killed,
# so that a kill lands right after a checkpoint whatever the machine's load.
PAUSE_ENV = "HIERTOK_TEST_PAUSE_AFTER_CHECKPOINT"


def _pause_if_asked(step: int) -> None:
    flag = os.environ.get(PAUSE_ENV)
    if flag:
        atomic_write_text(flag, str(step))  # the test sees the step only once it is whole
        while True:
            time.sleep(1)


def run_steps(
    acc: Accelerator,
    model: nn.Module,
    optimizer,
    scheduler,
    tc: TrainConfig,
    loss_fn: LossFn,
    eval_fn: Callable[[], dict[str, float]],
    ckpt: Checkpoints,
    log: MetricsLog,
    start: int,
    desc: str,
) -> LoopResult:
    """Optimizer steps start..max_steps (or to train.stop_at_step), checkpointing as configured.

    Args:
        acc: the Accelerator (model and optimizer already prepared).
        model: the prepared model (put in train mode before each step; eval_fn may switch it).
        optimizer, scheduler: prepared optimizer and its LR schedule.
        tc: the training settings.
        loss_fn: loss of global micro-step m, computed under autocast by the caller's model.
        eval_fn: held-out evaluation, run on the main process every eval_every steps and at the end.
        ckpt, log: checkpoints and metrics of the run.
        start: the first step (0, or the resumed checkpoint's step).
        desc: progress-bar label.
    """
    avg, last_eval = Averager.new(), {}
    # Seconds spent in optimizer steps only (no evaluation, checkpointing or start-up), summed across resumes:
    # the training budget that equal-training-time comparisons (`hiertok eval codelength`) state.
    train_s = (train_seconds(log.path.parent) or 0.0) if start > 0 else 0.0
    bar = tqdm(
        total=tc.max_steps,
        initial=start,
        disable=not (tc.progress and acc.is_local_main_process),
        desc=desc,
        dynamic_ncols=True,
    )
    done = start
    for step in range(start, tc.max_steps):
        t0 = time.perf_counter()
        model.train()
        for i, micro in enumerate(micro_batches(step, tc.grad_accum)):
            with acc.no_sync(model) if i < tc.grad_accum - 1 else nullcontext():
                with acc.autocast():
                    loss, values = loss_fn(micro)
                acc.backward(loss / tc.grad_accum)
            avg.add(values)
        if tc.grad_clip > 0:
            acc.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        train_s += time.perf_counter() - t0
        done = step + 1
        bar.update(1)
        stop = tc.stop_at_step is not None and done >= tc.stop_at_step
        save = done % tc.save_every == 0 or done == tc.max_steps or stop
        # A checkpoint's step is always logged, so a resumed run's train_s continues from the exact figure.
        if done % tc.log_every == 0 or done == tc.max_steps or save:
            values = mean_over_processes(acc, avg.pop())
            values["lr"] = scheduler.get_last_lr()[0]
            values["train_s"] = round(train_s, 2)
            log.log(done, "train", values)
            bar.set_postfix(loss=f"{values['loss']:.3f}")
        if done % tc.eval_every == 0 or done == tc.max_steps:
            if acc.is_main_process:
                last_eval = eval_fn()
                log.log(done, "eval", last_eval)
                bar.write(f"step {done}: " + ", ".join(f"{k} {v:.3f}" for k, v in last_eval.items()))
            acc.wait_for_everyone()
        if save:
            ckpt.save(done)
            _pause_if_asked(done)
        if stop and done < tc.max_steps:
            acc.print(f"stopped at step {done} as asked (train.stop_at_step); continue with --resume")
            break
    bar.close()
    if acc.num_processes > 1:
        log.log(done, "replicas", {"max_abs_diff": replica_divergence(acc, model)})
    return LoopResult(done, done >= tc.max_steps, last_eval)
