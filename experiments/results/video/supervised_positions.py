"""Can the video tokenizer's encoder (configs/tokenizer/video.yaml's size) learn where the squares are when asked
directly? The encoder and a linear head trained for 400 steps (batch 32) to regress each colour's top-left corner
from the pixels of 5,000 frames, scored on 1,000 others: the fraction of present colours placed exactly and within
1 pixel. Arguments: the pooling (mean, attention or flatten), 1 for learned absolute positions (2d: the same table
started from 2D sinusoids, x and y apart, instead of random vectors), and q to put
video.yaml's quantizer (8 levels of FSQ 1000, matryoshka, level dropout 0.1) between the encoder and the head (any
other word: none); then, optionally, another FSQ codebook size per level, another level dropout and another number of
steps.

    python experiments/results/video/supervised_positions.py mean 1
    python experiments/results/video/supervised_positions.py mean 1 q
    python experiments/results/video/supervised_positions.py mean 1 q 65536 0.1
    python experiments/results/video/supervised_positions.py mean 1 q 1000 0.1 2000
    python experiments/results/video/supervised_positions.py mean 2d q
"""

import sys

import numpy as np
import torch
from torch import nn

from hiertok.data.video import VideoWorld, VideoWorldConfig
from hiertok.encoder import EncoderConfig, IdeaEncoder
from hiertok.quantize import MultiLevelQuantizer, QuantizerConfig

torch.manual_seed(0)
v = VideoWorld(VideoWorldConfig()).generate(300, seed=0).reshape(-1, 256)


def corner(f):
    out = np.zeros((len(f), 3, 2))
    pres = np.zeros((len(f), 3), bool)
    g = f.reshape(-1, 16, 16)
    for c in range(1, 4):
        m = g == c
        pres[:, c - 1] = m.any((1, 2))
        out[:, c - 1, 0] = np.where(pres[:, c - 1], m.any(1).argmax(1), 0)
        out[:, c - 1, 1] = np.where(pres[:, c - 1], m.any(2).argmax(1), 0)
    return torch.tensor(out, dtype=torch.float32).flatten(1), torch.tensor(pres).repeat_interleave(2, 1).float()


y, pm = corner(v)
x = torch.tensor(v + 3)
pool, absp = sys.argv[1], sys.argv[2] in ("1", "2d")
size = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
dropout = float(sys.argv[5]) if len(sys.argv) > 5 else 0.1
steps = int(sys.argv[6]) if len(sys.argv) > 6 else 400
quantizer = MultiLevelQuantizer(
    QuantizerConfig(
        kind="fsq",
        hierarchy="matryoshka",
        levels=8,
        codebook_sizes=[size],
        level_dropout=dropout,
        prefix_dist="uniform",
    )
)
enc = IdeaEncoder(EncoderConfig(dim=64, heads=4, dim_head=16, pool=pool, abs_positions=absp), 7, 257, quantizer.dim)
if sys.argv[2] == "2d":
    from hiertok.layers import raster_positions

    raster_positions(enc.net.pos_emb.emb.weight, width=16)
head = nn.Linear(quantizer.dim, 6)
QUANTIZED = len(sys.argv) > 3 and sys.argv[3] == "q"


def wrap(z: torch.Tensor) -> torch.Tensor:
    return quantizer(z).quantized if QUANTIZED else z


opt = torch.optim.AdamW([*enc.parameters(), *head.parameters(), *quantizer.parameters()], 2e-3)
for step in range(steps):
    i = torch.randint(0, 5000, (32,))
    loss = (((head(wrap(enc(x[i], torch.ones(32, 256, dtype=torch.bool)))) - y[i]) ** 2) * pm[i]).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 100 == 99:
        print(step + 1, round(loss.item(), 3))
enc.eval()  # no level dropout when scoring
quantizer.eval()
with torch.no_grad():
    j = torch.arange(5000, 6000)
    err = (
        (head(wrap(enc(x[j], torch.ones(1000, 256, dtype=torch.bool)))).round() - y[j])
        .abs()
        .reshape(-1, 3, 2)
        .max(-1)
        .values
    )
    p = pm[j].reshape(-1, 3, 2)[..., 0].bool()
    print(pool, absp, "exact", (err[p] == 0).float().mean().item(), "within1", (err[p] <= 1).float().mean().item())
