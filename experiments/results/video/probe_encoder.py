"""The linear position probe (hiertok/video_probe.py) on a video tokenizer's encoder vector, before the quantizer:
fitted on the run's first 200 training videos, scored on its held-out videos. Does the quantizer lose what the
encoder knows of where the objects are?

    python experiments/results/video/probe_encoder.py runs/video/tok-abs3k
"""

import dataclasses
import sys

import numpy as np
import torch

from hiertok.data.corpus import heldout_videos, train_videos
from hiertok.tokenizer import IdeaTokenizer
from hiertok.video_probe import probe_positions

tok = IdeaTokenizer.from_pretrained(sys.argv[1])
tok.model.eval()


def encoder_vectors(videos: np.ndarray) -> torch.Tensor:
    """(frames, D) the encoder's vector of every frame, before the quantizer."""
    ids = torch.as_tensor(tok.bpe.encode(videos)).reshape(-1, videos.shape[-2] * videos.shape[-1])
    return torch.cat([tok.model.embed(part, torch.ones_like(part, dtype=torch.bool)) for part in ids.split(512)])


train = train_videos(dataclasses.replace(tok.cfg.data, max_docs=200))
held = heldout_videos(tok.cfg.data)
frames = [v.reshape(-1, *v.shape[-2:]) for v in (train, held)]
scores = probe_positions(encoder_vectors(train), frames[0], encoder_vectors(held), frames[1])
print(sys.argv[1], "encoder vector, before the quantizer:", scores)
