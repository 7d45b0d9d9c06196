"""Is drawing a frame from where its squares are the slow half of the video autoencoder? A parallel idea decoder
(configs/tokenizer/video.yaml's size, absolute positions, the code at every input: `par_every`'s decoder) is given
each colour's true state instead of codes (present, top-left x and y, size, scaled to [-1, 1]: 12 numbers) and trained
to draw the frame, 1,000 steps of batch 32 at video.yaml's learning rate; then scored on 1,000 held-out frames: exact
frames and pixel accuracy, decoded in one forward pass. `--raster 16` starts the positions as video.yaml's do;
`--cosine` warms the learning rate up over 100 steps and decays it to a tenth along a cosine, as `hiertok train` does.

    python experiments/results/video/render_from_truth.py 1000                      # session 19's decoder
    python experiments/results/video/render_from_truth.py 2000 --raster 16 --cosine  # video.yaml's (session 25)
"""

import argparse
import math

import numpy as np
import torch

from decoder.generate import GenerationConfig, generate
from decoder.model import DecoderConfig, IdeaDecoder, SpecialIds
from hiertok.data.video import VideoWorld, VideoWorldConfig

parser = argparse.ArgumentParser()
parser.add_argument("steps", type=int, nargs="?", default=1000)
parser.add_argument("dim", type=int, nargs="?", default=64)
parser.add_argument("--raster", type=int, default=0, help="model.decoder.raster_width (0: random positions)")
parser.add_argument("--cosine", action="store_true", help="warmup and cosine decay instead of a constant rate")
args = parser.parse_args()
steps, dim = args.steps, args.dim
torch.manual_seed(0)
frames = VideoWorld(VideoWorldConfig()).generate(300, seed=0).reshape(-1, 16, 16)  # 6,000 frames


def states(f: np.ndarray) -> torch.Tensor:
    """(N, 12): per colour 1..3, present and its top-left corner and size, scaled to [-1, 1]."""
    out = np.zeros((len(f), 3, 4), np.float32)
    for c in range(1, 4):
        m = f == c
        present = m.any((1, 2))
        rows, cols = m.any(2), m.any(1)
        y0, x0 = rows.argmax(1), cols.argmax(1)
        size = np.maximum(rows.sum(1), cols.sum(1))  # a covered square still shows its full extent on one axis
        out[:, c - 1] = np.stack([present * 2.0 - 1, x0 / 7.5 - 1, y0 / 7.5 - 1, size - 2.5], 1) * present[:, None]
    return torch.tensor(out.reshape(len(f), 12))


special = SpecialIds(pad=0, bos=1, eos=2)
cfg = DecoderConfig(
    dim=dim,
    heads=4,
    dim_head=dim // 4,
    max_len=257,
    abs_positions=True,
    code_every_token=True,
    parallel=True,
    raster_width=args.raster,
)
dec = IdeaDecoder(cfg, vocab_size=7, cond_dim=12, special=special)
tokens = torch.tensor(frames.reshape(-1, 256).astype(np.int64) + 3)
cond_all = states(frames)
opt = torch.optim.AdamW(dec.parameters(), 2e-3, weight_decay=0.01)


def rate(step: int) -> float:
    if not args.cosine:
        return 1.0
    return min(1.0, (step + 1) / 100) * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, step / steps))))


sched = torch.optim.lr_scheduler.LambdaLR(opt, rate)
mask = torch.ones(32, 256, dtype=torch.bool)
for step in range(steps):
    i = torch.randint(0, 5000, (32,))
    inp, target, tmask = dec.teacher_forcing(tokens[i], mask)
    loss = -(dec.score(inp, dec.condition(cond_all[i]), target).log_prob * tmask).sum() / tmask.sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    if step % 200 == 199:
        print(step + 1, round(loss.item(), 4), flush=True)
dec.eval()
held = torch.arange(5000, 6000)
with torch.no_grad():
    out = generate(dec, dec.condition(cond_all[held]), GenerationConfig(max_tokens=256)).tokens
pred = np.array([(t + [3] * 256)[:256] for t in out]) - 3
truth = frames[5000:6000].reshape(-1, 256)
print(f"exact frames {np.mean((pred == truth).all(1)):.3f}, pixel accuracy {np.mean(pred == truth):.4f}")
