"""The rules check of rollouts (hiertok/video_moves.py) on videos drawn by the world and on hand-made breaks."""

import numpy as np

from hiertok.data.video import VideoWorld, VideoWorldConfig
from hiertok.video_moves import allowed_states, legal_videos


def test_every_video_the_world_draws_is_legal():
    for cfg in (
        VideoWorldConfig(),
        VideoWorldConfig(turn_prob=0.3),
        VideoWorldConfig(objects=3),
        VideoWorldConfig(objects=1),
    ):
        videos = VideoWorld(cfg).generate(200, seed=3)
        assert legal_videos(videos, context=4).all(), cfg


def square(x: int, y: int, s: int, colour: int, frame: np.ndarray | None = None) -> np.ndarray:
    frame = np.zeros((16, 16), dtype=np.uint8) if frame is None else frame.copy()
    frame[y : y + s, x : x + s] = colour
    return frame


def video(*frames: np.ndarray) -> np.ndarray:
    return np.stack(frames)[None]


def test_a_square_moves_one_pixel_a_step_and_never_stands_still():
    a, b, c = square(3, 3, 2, 1), square(4, 4, 2, 1), square(4, 5, 2, 1)
    assert legal_videos(video(a, b, c))[0]
    assert not legal_videos(video(a, b, b))[0]  # no move
    assert not legal_videos(video(a, square(6, 3, 2, 1)))[0]  # two pixels
    assert not legal_videos(video(a, square(4, 3, 3, 1)))[0]  # another size
    assert not legal_videos(video(a, square(4, 3, 2, 2)))[0]  # another colour appears
    assert not legal_videos(video(a, np.zeros((16, 16), dtype=np.uint8)))[0]  # the square vanishes
    assert not legal_videos(video(a, square(4, 3, 2, 1) | square(9, 9, 1, 1)))[0]  # a stray pixel


def frames_of(states: list[tuple[tuple[int, int, int, int], ...]], reverse: bool = False) -> np.ndarray:
    """A video (1, T, 16, 16) of squares (x, y, size, colour), painted in increasing colour (decreasing: `reverse`)."""
    out = []
    for objects in states:
        frame = np.zeros((16, 16), dtype=np.uint8)
        for x, y, s, c in sorted(objects, key=lambda o: o[3], reverse=reverse):
            frame[y : y + s, x : x + s] = c
        out.append(frame)
    return np.stack(out)[None]


def crossing(t: int) -> tuple[tuple[int, int, int, int], ...]:
    """Colour 1 (2 x 2) moving right and colour 3 (3 x 3) moving left: they overlap in the middle frames."""
    return (2 + t, 6, 2, 1), (10 - t, 5, 3, 3)


def test_a_square_may_pass_under_a_higher_colour_only():
    assert legal_videos(frames_of([crossing(t) for t in range(8)]))[0]
    assert not legal_videos(frames_of([crossing(t) for t in range(8)], reverse=True))[0]  # 1 painted over 3
    together = [((6 + t, 6, 2, 1), (5 + t, 5, 3, 3)) for t in range(5)]  # 1 wholly under 3, moving with it
    assert legal_videos(frames_of(together))[0]
    hidden = frames_of(together)[0, 1]
    assert (hidden != 1).all() and allowed_states(hidden, 1)[2].sum() == 4  # any 2 x 2 inside the 3 x 3
    jump = [((1, 1, 2, 1), (9, 9, 3, 3)), ((10, 10, 2, 1), (10, 9, 3, 3))]  # 1 vanishes under 3, far away
    assert not legal_videos(frames_of(jump))[0]
    assert legal_videos(frames_of([((1, 1, 2, 1), (9, 9, 3, 3)), ((2, 2, 2, 1), (10, 9, 3, 3))]))[0]
