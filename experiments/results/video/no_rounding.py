"""A diagnostic, not a knob: `hiertok` with FSQ's rounding turned off (vector-quantize-pytorch's straight-through
round made the identity), so the tokenizer trains through a continuous bottleneck of the same width and bounds.
Its held-out reconstruction loss (the run's metrics.jsonl) against the same run with rounding says whether the
quantizer is what slows the video autoencoder; its codes are not meaningful, so evaluate only the loss.

    python experiments/results/video/no_rounding.py train tokenizer --config configs/tokenizer/video.yaml \
        --out runs/video/nofsq train.max_steps=1000 train.eval_every=1000
"""

import sys

import vector_quantize_pytorch.finite_scalar_quantization as fsq

from hiertok.cli import main

fsq.round_ste = lambda z: z
sys.exit(main(sys.argv[1:]))
