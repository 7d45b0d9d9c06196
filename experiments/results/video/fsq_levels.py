"""`hiertok` with another FSQ factorisation of the 1000-code levels, for a trial (not a config knob): the first
argument gives the levels per dimension (32,32: 1,024 codes in 2 dimensions of 32 values, so that one dimension can
hold a coordinate of a 16-pixel frame), the rest is the CLI's command line.

    python experiments/results/video/fsq_levels.py 32,32 train tokenizer --config configs/tokenizer/video.yaml \
        --out runs/video/par_32 model.decoder.parallel=true model.encoder.abs_positions=true \
        model.decoder.abs_positions=true
"""

import sys

import hiertok.quantize as quantize
from hiertok.cli import main

quantize.FSQ_LEVELS[1000] = [int(n) for n in sys.argv[1].split(",")]
sys.exit(main(sys.argv[2:]))
