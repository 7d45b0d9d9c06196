"""The video world's information floors: distinct frames counted against a brute force over `render`, and the
next frame's entropy at the deterministic and the turning extremes."""

import dataclasses
import itertools
import math

import numpy as np
import pytest

from hiertok.data.video import COLOURS, SIZES, Objects, VideoWorldConfig, render
from hiertok.data.video_floor import (
    distinct_frames,
    drawable_frames,
    frame_floor_bits,
    next_frame_floor_bits,
    packed,
)


def _brute_force(cfg: VideoWorldConfig) -> set[bytes]:
    frames = []
    for colours in itertools.combinations(range(1, COLOURS), cfg.objects):
        for sizes in itertools.product(SIZES, repeat=cfg.objects):
            spots = [[(x, y) for y in range(cfg.height - s + 1) for x in range(cfg.width - s + 1)] for s in sizes]
            for corners in itertools.product(*spots):
                obj = Objects(np.array(colours), np.array(sizes), np.array(corners), np.zeros((cfg.objects, 2), int))
                frames.append(render(obj, cfg.height, cfg.width))
    return {row.tobytes() for row in packed(np.stack(frames))}


@pytest.mark.parametrize("objects", [1, 2, 3])
def test_drawable_frames_are_a_brute_force_over_render(objects):
    cfg = VideoWorldConfig(height=5, width=6, objects=objects)
    drawn = drawable_frames(cfg)
    assert {row.tobytes() for row in drawn} == _brute_force(cfg) and distinct_frames(cfg) == len(drawn)
    if objects == 1:  # one square is never covered: every colour, size and corner is its own frame
        assert distinct_frames(cfg) == 3 * ((5 - 1) * (6 - 1) + (5 - 2) * (6 - 2))
    states = sum(
        math.prod((5 - s + 1) * (6 - s + 1) for s in sizes) for sizes in itertools.product(SIZES, repeat=objects)
    ) * math.comb(3, objects)
    assert distinct_frames(cfg) <= states
    if objects > 1:  # a covered square makes several states one frame
        assert distinct_frames(cfg) < states


def test_a_held_out_pair_leaves_its_frames_out_of_the_floor():
    one = VideoWorldConfig(height=5, width=6, objects=1)
    every = 3 * ((5 - 1) * (6 - 1) + (5 - 2) * (6 - 2))
    assert distinct_frames(dataclasses.replace(one, exclude=[1, 2])) == every - (5 - 1) * (6 - 1)
    assert distinct_frames(dataclasses.replace(one, require=[1, 2])) == (5 - 1) * (6 - 1)


def test_the_default_frame_floor_is_about_19_bits():
    assert frame_floor_bits(VideoWorldConfig()) == pytest.approx(19.01, abs=0.01)


def test_next_frame_floor_is_zero_without_turns_and_one_velocity_choice_with_them():
    assert next_frame_floor_bits(VideoWorldConfig()) == 0.0
    # One square in a wide frame: a turn draws one of 8 velocities, so the next frame is the old velocity's with
    # probability 1 - p + p/8 and each other one's with p/8, apart from the rare steps at a wall.
    p = 0.5
    keep = 1 - p + p / 8
    choice = -(keep * math.log2(keep) + 7 * (p / 8) * math.log2(p / 8))
    cfg = VideoWorldConfig(height=64, width=64, frames=3, objects=1, turn_prob=p)
    bits = next_frame_floor_bits(cfg, videos=40)
    assert choice - 0.15 < bits <= choice + 1e-9
    assert next_frame_floor_bits(VideoWorldConfig(turn_prob=1.0), videos=5) <= 2 * 3 + 1e-9
