"""`hiertok train tokenizer` with the encoder's and the decoder's x-transformers stacks under torch.compile
(inductor, dynamic shapes): does compiling make a tiny.yaml step cheaper on this CPU? Compare the run's train_s
per 20 steps after the first 20 (which pay the compilation) with a run without it. The remaining arguments are the
CLI's, after `--out`.

    python experiments/results/precision/compile_tokenizer.py /tmp/compiled train.max_steps=100 \
        train.eval_every=1000 train.save_every=1000 train.log_every=20
"""

import sys

import torch

import hiertok.autoencoder as autoencoder
from hiertok.cli import main

build = autoencoder.IdeaAutoencoder.__init__


def compiled(self, *args, **kwargs):
    build(self, *args, **kwargs)
    self.encoder.net.attn_layers = torch.compile(self.encoder.net.attn_layers, dynamic=True)
    self.decoder.net.attn_layers = torch.compile(self.decoder.net.attn_layers, dynamic=True)


autoencoder.IdeaAutoencoder.__init__ = compiled
sys.exit(main(["train", "tokenizer", "--config", "configs/tokenizer/tiny.yaml", "--out", *sys.argv[1:]]))
