"""A video run scored as `hiertok eval tokenizer` / `hiertok eval planner` score it (held-out videos of its world;
rollouts of 16 frames from 4, beam 4), with the frame search off and on side by side: `generation.search_pixels` 0
and M (hiertok/frame_search.py), whatever the run's config says. Prints one JSON line per setting.

    python experiments/results/video/search_eval.py RUN [M]    # a tokenizer run (pixels.json) or a planner run
"""

import json
import sys
from pathlib import Path

from hiertok.data.pixels import PIXELS_FILE
from hiertok.pipeline import Pipeline
from hiertok.rollout import evaluate_video_planner
from hiertok.tokenizer import IdeaTokenizer
from hiertok.video_eval import eval_videos, evaluate_video_tokenizer
from planner.config import data_config

run, m = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8
if (Path(run) / PIXELS_FILE).exists():
    tok = IdeaTokenizer.from_pretrained(run)
    videos = eval_videos(tok.cfg.data, None, None)
    for pixels in (0, m):
        tok.cfg.generation.search_pixels = pixels
        scores = evaluate_video_tokenizer(tok, videos)
        print(json.dumps({"run": run, "search_pixels": pixels, "by_level": scores.by_level}))
else:
    pipe = Pipeline.from_pretrained(run)
    videos = eval_videos(data_config(pipe.cfg, pipe.tokenizer), None, None)
    for pixels in (0, m):
        pipe.tokenizer.cfg.generation.search_pixels = pixels
        scores = evaluate_video_planner(pipe, videos, context=4, steps=16, beams=4).to_dict()
        print(json.dumps({"run": run, "search_pixels": pixels, **scores}))
