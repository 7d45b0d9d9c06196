"""The position probe of video runs (hiertok/video_probe.py) on features whose content is known."""

import numpy as np
import torch

from hiertok.data.video import VideoWorld, VideoWorldConfig
from hiertok.video_objects import centroids
from hiertok.video_probe import fit_ridge, probe_positions


def frames(n: int, seed: int) -> np.ndarray:
    return VideoWorld(VideoWorldConfig()).generate(n, seed=seed).reshape(-1, 16, 16)


def centroid_features(f: np.ndarray) -> torch.Tensor:
    """Each colour's centroid (0 where absent) and presence: features a linear probe reads positions from."""
    centres, present = centroids(f)
    return torch.tensor(np.concatenate([np.nan_to_num(centres).reshape(len(f), -1), present], 1), dtype=torch.float32)


def test_ridge_recovers_a_linear_map():
    x = torch.randn(200, 5)
    w = torch.randn(5, 2)
    fitted = fit_ridge(x, x @ w + 3.0)
    assert torch.allclose(fitted[:5].float(), w, atol=1e-2)
    assert torch.allclose(fitted[5].float(), torch.tensor(3.0), atol=1e-2)  # the bias


def test_the_probe_places_objects_from_features_that_hold_them_and_not_from_noise():
    train, held = frames(40, seed=1), frames(10, seed=2)
    known = probe_positions(centroid_features(train), train, centroid_features(held), held)
    assert known["within_1px"] == 1.0 and known["r2"] > 0.999
    g = torch.Generator().manual_seed(0)
    x_train, x_held = torch.randn(len(train), 10, generator=g), torch.randn(len(held), 10, generator=g)
    noise = probe_positions(x_train, train, x_held, held)
    assert noise["r2"] < 0.1 and noise["within_1px"] < 0.3
    # Features of the wrong frames (the held-out ones shifted by one video) carry positions, just not these.
    shifted = probe_positions(centroid_features(train), train, centroid_features(np.roll(held, 20, 0)), held)
    assert shifted["within_1px"] < 0.5
