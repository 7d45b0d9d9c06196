"""Which levels of a video tokenizer's codes say where the objects are: a linear probe by level, with a control.

Each object colour's centroid (y, x) is regressed linearly (ridge, in closed form) on the code vector of a frame's
first k levels (`MultiLevelQuantizer.decode_indices`: what the decoder reads, the later levels absent), fitted on
training frames and scored on held-out frames. The same probe on a tokenizer of the same config with random
weights is the control: what the architecture's codes say of positions before any training (a random encoder is
not blind to where pixels are). A trained tokenizer whose probe does no better than its control has not learnt
to put positions in its codes; one whose decoded frames misplace objects while the probe places them has codes
that know, and a decoder that does not read them.
"""

from __future__ import annotations

import numpy as np
import torch

from hiertok.codes import Codes
from hiertok.tokenizer import IdeaTokenizer
from hiertok.video_objects import centroids

RIDGE = 1e-3  # times the Gram matrix's mean diagonal: keeps the solve stable where code dimensions are constant


def code_vectors(tok: IdeaTokenizer, codes: Codes, k: int) -> torch.Tensor:
    """(N, D) decoder-side code vectors of every frame's first k levels, frames in (video, time) order.

    Args:
        tok: a video tokenizer.
        codes: its codes of videos (`encode_frames`), ids (B, T, L).
        k: levels kept (1..L).

    Returns:
        One float vector per frame.
    """
    flat = codes.ids.reshape(-1, codes.ids.shape[-1])[:, :k].to(tok.device)
    with torch.no_grad():
        return tok.model.quantizer.decode_indices(flat).float().cpu()


def fit_ridge(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Least-squares weights (D + 1, M) of y (N, M) on [x, 1] (N, D + 1), with a small ridge (`RIDGE`)."""
    xb = torch.cat([x, torch.ones(len(x), 1)], 1).double()
    gram = xb.T @ xb
    ridge = RIDGE * gram.diagonal().mean().clamp(min=1e-12) * torch.eye(len(gram), dtype=gram.dtype)
    return torch.linalg.solve(gram + ridge, xb.T @ y.double())


def probe_positions(x_train: torch.Tensor, train: np.ndarray, x_held: torch.Tensor, held: np.ndarray) -> dict:
    """Fit each colour's centroid on training frames' vectors, score it on held-out frames.

    Args:
        x_train: (N, D) vectors of the training frames; train: (N, H, W) those frames.
        x_held: (M, D) vectors of the held-out frames; held: (M, H, W) those frames.

    Returns:
        within_1px: the fraction of present held-out objects whose predicted centroid is within 1 pixel on both
        axes; r2: 1 - residual / total variance of the held-out centroids (both axes, present objects).
    """
    (c_train, p_train), (c_held, p_held) = centroids(train), centroids(held)
    hits = total = 0
    residual = variance = 0.0
    for colour in range(c_train.shape[1]):
        rows, rows_held = p_train[:, colour], p_held[:, colour]
        if rows.sum() < 2 or not rows_held.any():
            continue
        w = fit_ridge(x_train[torch.from_numpy(rows)], torch.from_numpy(c_train[rows, colour]))
        xh = torch.cat([x_held[torch.from_numpy(rows_held)], torch.ones(int(rows_held.sum()), 1)], 1).double()
        pred, true = (xh @ w).numpy(), c_held[rows_held, colour]
        hits += int((np.abs(pred - true) <= 1.0).all(-1).sum())
        total += len(true)
        residual += float(((pred - true) ** 2).sum())
        variance += float(((true - true.mean(0)) ** 2).sum())
    return {
        "within_1px": hits / total if total else float("nan"),
        "r2": 1.0 - residual / variance if variance else float("nan"),
    }


def random_like(tok: IdeaTokenizer, seed: int = 0) -> IdeaTokenizer:
    """A tokenizer of `tok`'s config and vocabulary with freshly initialised weights (the probe's control)."""
    with torch.random.fork_rng():  # the caller's random state is left as it was
        torch.manual_seed(seed)
        fresh = IdeaTokenizer(tok.cfg, tok.bpe)
    fresh.model.to(tok.device)
    return fresh


def probe_by_level(
    tok: IdeaTokenizer, train: np.ndarray, held: np.ndarray, ks: list[int], control: IdeaTokenizer | None = None
) -> dict[int, dict[str, float]]:
    """`probe_positions` at each k in `ks`, for `tok` and (as `random_*`) for `control` (default `random_like`).

    Args:
        tok: the trained video tokenizer.
        train: (B, T, H, W) videos to fit the probe on.
        held: (B', T, H, W) videos to score it on.
        ks: levels kept.
        control: the untrained tokenizer to probe beside it.

    Returns:
        k -> within_1px, r2, random_within_1px, random_r2.
    """
    control = control or random_like(tok)
    control.model.eval()
    frames_train, frames_held = train.reshape(-1, *train.shape[-2:]), held.reshape(-1, *held.shape[-2:])
    out: dict[int, dict[str, float]] = {k: {} for k in ks}
    for prefix, t in (("", tok), ("random_", control)):
        codes_train, codes_held = t.encode_frames(train), t.encode_frames(held)
        for k in ks:
            x_train, x_held = code_vectors(t, codes_train, k), code_vectors(t, codes_held, k)
            scores = probe_positions(x_train, frames_train, x_held, frames_held)
            out[k].update({prefix + key: value for key, value in scores.items()})
    return out
