"""Do a video tokenizer's codes say where the squares are? An MLP probe from the quantized code vector (all
levels) to each colour's bounding-box corner (top-left x, y), fitted on the codes of training frames and scored on
held-out frames: the fraction of present colours whose corner it gets exactly, and within 1 pixel.

    python experiments/results/video/probe_positions.py runs/video/tok 200
    python experiments/results/video/probe_positions.py runs/video/tok 200 before   # the encoder's vector, unquantized
"""

import sys

import numpy as np
import torch
from torch import nn

from hiertok.data.corpus import heldout_videos, train_videos
from hiertok.tokenizer import IdeaTokenizer


def vectors(tok: IdeaTokenizer, videos: np.ndarray) -> torch.Tensor:
    if BEFORE:
        ids = torch.as_tensor(tok.bpe.encode(videos)).reshape(-1, videos.shape[-2] * videos.shape[-1])
        with torch.no_grad():
            return tok.model.encoder(ids, torch.ones_like(ids, dtype=torch.bool)).float()
    codes = tok.encode_frames(videos)
    flat = codes.ids.reshape(-1, codes.ids.shape[-1])
    with torch.no_grad():
        return tok.model.quantizer.decode_indices(flat).float()


def corners(videos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 2) top-left (x, y) of colours 1..3 and (N, 3) present."""
    frames = videos.reshape(-1, *videos.shape[-2:])
    out = np.zeros((len(frames), 3, 2))
    present = np.zeros((len(frames), 3), bool)
    for c in range(1, 4):
        m = frames == c
        present[:, c - 1] = m.any((1, 2))
        out[:, c - 1, 0] = np.where(present[:, c - 1], m.any(1).argmax(1), 0)
        out[:, c - 1, 1] = np.where(present[:, c - 1], m.any(2).argmax(1), 0)
    return out, present


tok = IdeaTokenizer.from_pretrained(sys.argv[1])
tok.model.eval()
BEFORE = len(sys.argv) > 3 and sys.argv[3] == "before"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
torch.manual_seed(0)
train, held = train_videos(tok.cfg.data)[:n], heldout_videos(tok.cfg.data)
xs, xh = vectors(tok, train), vectors(tok, held)
(ys, ps), (yh, ph) = corners(train), corners(held)
ys, yh = torch.tensor(ys, dtype=torch.float32).flatten(1), torch.tensor(yh, dtype=torch.float32).flatten(1)
mask_s = torch.tensor(ps).repeat_interleave(2, 1).float()
probe = nn.Sequential(nn.Linear(xs.shape[1], 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, 6))
opt = torch.optim.Adam(probe.parameters(), 1e-3)
for _ in range(3000):
    i = torch.randint(0, len(xs), (256,))
    loss = (((probe(xs[i]) - ys[i]) ** 2) * mask_s[i]).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
with torch.no_grad():
    err = (probe(xh).round() - yh).abs().reshape(-1, 3, 2).max(-1).values.numpy()
print(f"{len(xs)} training frames, {len(xh)} held-out frames, code vector width {xs.shape[1]}")
print(f"held-out corners exact: {(err[ph] == 0).mean():.3f}, within 1 pixel: {(err[ph] <= 1).mean():.3f}")
