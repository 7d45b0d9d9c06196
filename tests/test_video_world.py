"""The video world follows its rules exactly: shapes, colours, sizes, moves, bounces, painting order, turns."""

import hashlib

import numpy as np
import pytest

from hiertok.data.video import VELOCITIES, Objects, VideoWorld, VideoWorldConfig, render, step
from hiertok.errors import UserError


def test_videos_are_seeded_uint8_arrays_of_the_configured_shape():
    world = VideoWorld()
    videos = world.generate(5, seed=3)
    assert videos.shape == (5, 20, 16, 16) and videos.dtype == np.uint8
    assert np.array_equal(videos, world.generate(5, seed=3)) and not np.array_equal(videos, world.generate(5, seed=4))
    assert videos.max() <= 3
    small = VideoWorld(VideoWorldConfig(height=8, width=12, frames=4, objects=3)).generate(2)
    assert small.shape == (2, 4, 8, 12)


def test_objects_are_drawn_by_the_rules_and_every_step_is_a_legal_move():
    cfg = VideoWorldConfig(objects=3)
    world = VideoWorld(cfg)
    rng = np.random.default_rng(0)
    legal = {tuple(v) for v in VELOCITIES}
    for _ in range(50):
        frames, states = world.video(rng)
        first = states[0]
        assert sorted(first.colour.tolist()) == [1, 2, 3] and set(first.size.tolist()) <= {2, 3}
        for before, after in zip(states, states[1:]):
            moved = after.pos - before.pos
            assert (np.abs(moved) <= 1).all() and (np.abs(moved).sum(1) > 0).all()  # every object moves
            assert all(tuple(v) in legal for v in after.vel)
            assert (after.pos >= 0).all() and (after.pos[:, 0] <= cfg.width - after.size).all()
            assert (after.pos[:, 1] <= cfg.height - after.size).all()
        for state, frame in zip(states, frames):
            assert np.array_equal(frame, render(state, cfg.height, cfg.width))


def test_a_step_bounces_off_each_wall_by_reflection():
    obj = Objects(
        colour=np.array([1, 2, 3]),
        size=np.array([2, 3, 2]),
        pos=np.array([[0, 5], [13, 0], [7, 14]]),
        vel=np.array([[-1, 1], [1, -1], [0, 1]]),
    )
    after = step(obj, 16, 16)
    # x: 0 - 1 = -1 -> 1, flips; 13 + 1 = 14 > 16 - 3 -> 2 * 13 - 14 = 12, flips; y: 0 - 1 -> 1; 14 + 1 > 14 -> 13.
    assert after.pos.tolist() == [[1, 6], [12, 1], [7, 13]]
    assert after.vel.tolist() == [[1, 1], [-1, 1], [0, -1]]


def test_higher_colours_are_painted_over_lower_ones():
    obj = Objects(np.array([3, 1, 2]), np.array([2, 2, 2]), np.array([[1, 1], [0, 0], [1, 0]]), np.ones((3, 2), int))
    frame = render(obj, 4, 4)
    assert frame[:3, :3].tolist() == [[1, 2, 2], [1, 3, 3], [0, 3, 3]]


def test_turns_redraw_velocities_only_when_asked():
    straight = VideoWorld(VideoWorldConfig(frames=12))
    _, states = straight.video(np.random.default_rng(1))
    # Without turns a velocity changes only by a bounce: each component keeps its size.
    assert all((np.abs(s.vel) == np.abs(states[0].vel)).all() for s in states)
    turning = VideoWorld(VideoWorldConfig(frames=12, turn_prob=1.0))
    _, states = turning.video(np.random.default_rng(1))
    assert any((np.abs(s.vel) != np.abs(states[0].vel)).any() for s in states)


@pytest.mark.parametrize(
    "knobs, fragment",
    [
        ({"objects": 0}, "1 to 3 objects"),
        ({"objects": 4}, "1 to 3 objects"),
        ({"height": 3}, "at least 4 pixels"),
        ({"frames": 0}, "at least one frame"),
        ({"turn_prob": 1.5}, "turn_prob"),
    ],
)
def test_impossible_worlds_are_one_line_errors(knobs, fragment):
    with pytest.raises(UserError, match=fragment):
        VideoWorld(VideoWorldConfig(**knobs))


def test_speed_2_moves_squares_up_to_2_pixels_an_axis_and_still_reflects():
    cfg = VideoWorldConfig(speed=2, objects=3)
    world = VideoWorld(cfg)
    assert len(world.velocities) == 24 and (0, 0) not in {tuple(v) for v in world.velocities}
    rng, fastest = np.random.default_rng(0), 0
    for _ in range(50):
        frames, states = world.video(rng)
        for before, after in zip(states, states[1:]):
            limit = np.stack([cfg.width - after.size, cfg.height - after.size], axis=1)
            assert (after.pos >= 0).all() and (after.pos <= limit).all()
            # each axis: the plain move, or its reflection off the wall it crossed
            plain = before.pos + before.vel
            reflected = np.where(plain < 0, -plain, 2 * limit - plain)
            assert ((after.pos == plain) | (after.pos == reflected)).all()
            assert (np.abs(after.vel) <= 2).all() and (np.abs(after.vel).sum(1) > 0).all()
            fastest = max(fastest, int(np.abs(after.pos - before.pos).max()))
    assert fastest == 2
    # the default world draws the videos it drew before the knobs existed (their digest, taken then)
    assert hashlib.md5(VideoWorld().generate(3, seed=0).tobytes()).hexdigest() == "4b73dd543e8d9e6aeaea79a7272d0c05"


def test_a_colour_and_size_pair_can_be_held_out_of_videos_or_required_in_each():
    def pairs(cfg):
        rng, world, seen = np.random.default_rng(0), VideoWorld(cfg), []
        for _ in range(200):
            first = world.video(rng)[1][0]
            seen.append({(int(c), int(s)) for c, s in zip(first.colour, first.size)})
        return seen

    assert all((3, 2) not in p for p in pairs(VideoWorldConfig(exclude=[3, 2])))
    assert all((3, 2) in p for p in pairs(VideoWorldConfig(require=[3, 2])))
    assert any((3, 2) in p for p in pairs(VideoWorldConfig()))  # the default world draws it
    for bad in ({"exclude": [0, 2]}, {"require": [1, 4]}, {"exclude": [3]}, {"exclude": [2, 3], "require": [2, 3]}):
        with pytest.raises(UserError):
            VideoWorld(VideoWorldConfig(**bad))
    with pytest.raises(UserError, match="speed"):
        VideoWorld(VideoWorldConfig(speed=14))
