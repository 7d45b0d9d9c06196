"""Seeded "video world": tiny videos of bouncing squares, the second modality's built-in corpus.

A video is a uint8 array (T, H, W) of colour indices 0..3 (0: background), row-major: x is the column, y the row.
Frame 0 is the initial state. The rules are exact, so videos made elsewhere from the same rules (other random
numbers) are valid input:

- each video has `objects` squares (1-3), each of its own colour drawn without repeats from {1, 2, 3}, of size
  s in {2, 3}, top-left corner (x, y) uniform over [0, W - s] x [0, H - s], velocity (vx, vy) uniform over
  {-1, 0, 1}^2 without (0, 0) (the 8 velocities; {-speed, ..., speed}^2 with `speed`); objects pass through each
  other;
- a step moves every object on every axis: p' = p + v; p' < 0 gives p' = -p', v = -v; p' > L - s gives
  p' = 2 (L - s) - p', v = -v (L: the width for x, the height for y);
- before each step, with probability `turn_prob`, an object's velocity is drawn again from the world's velocities;
- a frame paints the objects in increasing colour (3 covers 2 covers 1), so it is a function of their states.

Knobs for generalisation tests, off by default:
- `speed` 2 draws velocity components from {-2, ..., 2} (not both 0; the same reflection rule, after which a square
  may stay where it was: hiertok/video_moves.py's legality check and hiertok/video_objects.py's bounces assume
  speed 1);
- `exclude` [colour, size] draws no square of that colour and size (a pair held out of a training run), `require`
  [colour, size] gives every video one (the videos to score that pair on). Both condition the drawing of frame 0's
  squares (drawn again until they hold); without them the random stream is the default's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hiertok.errors import UserError

COLOURS = 4  # colour indices 0..3, 0 the background
SIZES = (2, 3)


def velocities(speed: int = 1) -> np.ndarray:
    """(N, 2) every velocity (vx, vy) with components in {-speed, ..., speed}, but (0, 0)."""
    steps = range(-speed, speed + 1)
    return np.array([(vx, vy) for vx in steps for vy in steps if (vx, vy) != (0, 0)], dtype=np.int64)


VELOCITIES = velocities(1)  # the default world's 8


@dataclass
class VideoWorldConfig:
    """Knobs of the video world (the defaults are the figures' setting)."""

    height: int = 16
    width: int = 16
    frames: int = 20  # T, frame 0 included
    objects: int = 2
    turn_prob: float = 0.0  # per object and step, the chance its velocity is drawn again
    speed: int = 1  # velocity components in {-speed, ..., speed}, not both 0
    exclude: list[int] | None = None  # [colour, size]: no square of this colour and size
    require: list[int] | None = None  # [colour, size]: every video has a square of this colour and size

    def validate(self) -> None:
        """Raise UserError with one line if the world cannot be drawn."""
        for name in ("exclude", "require"):
            pair = getattr(self, name)
            if pair is not None and (len(pair) != 2 or not 1 <= pair[0] < COLOURS or pair[1] not in SIZES):
                raise UserError(f"{name} is [colour, size] with a colour in 1..{COLOURS - 1} and a size in {SIZES}")
        if self.exclude is not None and self.require is not None and list(self.exclude) == list(self.require):
            raise UserError("exclude and require name the same colour and size: no video can hold both")
        if not 1 <= self.objects <= COLOURS - 1:
            raise UserError(f"a video has 1 to {COLOURS - 1} objects (one colour each), got {self.objects}")
        if min(self.height, self.width) < max(SIZES) + 1:
            raise UserError(f"frames must be at least {max(SIZES) + 1} pixels a side, got {self.height}x{self.width}")
        if self.frames < 1:
            raise UserError(f"a video has at least one frame, got {self.frames}")
        if not 0.0 <= self.turn_prob <= 1.0:
            raise UserError(f"turn_prob must be in [0, 1], got {self.turn_prob}")
        if not 1 <= self.speed <= min(self.height, self.width) - max(SIZES):
            # a faster square could cross the frame in one step, which one reflection does not undo
            raise UserError(f"speed must be in 1..{min(self.height, self.width) - max(SIZES)}, got {self.speed}")


@dataclass
class Objects:
    """The squares of one video at one time: arrays of length `objects`."""

    colour: np.ndarray  # (K,) distinct colours in 1..3
    size: np.ndarray  # (K,) side s
    pos: np.ndarray  # (K, 2) top-left corner (x, y)
    vel: np.ndarray  # (K, 2) velocity (vx, vy)


def step(obj: Objects, height: int, width: int) -> Objects:
    """Every object moved one step, bouncing off the walls (module docstring).

    Args:
        obj: the objects before the step.
        height, width: the frame's size H and W.

    Returns:
        The objects after it (positions and velocities new, colours and sizes the same).
    """
    limit = np.stack([width - obj.size, height - obj.size], axis=1)  # (K, 2): the largest corner on each axis
    pos, vel = obj.pos + obj.vel, obj.vel.copy()
    low, high = pos < 0, pos > limit
    pos = np.where(low, -pos, np.where(high, 2 * limit - pos, pos))
    vel = np.where(low | high, -vel, vel)
    return Objects(obj.colour, obj.size, pos, vel)


def render(obj: Objects, height: int, width: int) -> np.ndarray:
    """The frame the objects make.

    Args:
        obj: the objects.
        height, width: the frame's size H and W.

    Returns:
        (H, W) uint8: the objects painted in increasing colour on a background of 0.
    """
    frame = np.zeros((height, width), dtype=np.uint8)
    for k in np.argsort(obj.colour, kind="stable"):
        (x, y), s = obj.pos[k], obj.size[k]
        frame[y : y + s, x : x + s] = obj.colour[k]
    return frame


class VideoWorld:
    """Draws videos by the module's rules."""

    def __init__(self, cfg: VideoWorldConfig | None = None):
        self.cfg = cfg or VideoWorldConfig()
        self.cfg.validate()
        self.velocities = velocities(self.cfg.speed)

    def initial(self, rng: np.random.Generator) -> Objects:
        """The objects of a new video at frame 0 (drawn again until they hold `exclude` and `require`: every
        draw does with probability 1/6 or more, so this ends)."""
        while True:
            obj = self._draw(rng)
            if self.allows(obj.colour, obj.size):
                return obj

    def allows(self, colours: Sequence[int] | np.ndarray, sizes: Sequence[int] | np.ndarray) -> bool:
        """Whether squares of these colours and sizes (one each) keep `exclude` and `require`."""
        pairs = {(int(c), int(s)) for c, s in zip(colours, sizes)}
        ex, req = self.cfg.exclude, self.cfg.require
        return (ex is None or tuple(ex) not in pairs) and (req is None or tuple(req) in pairs)

    def _draw(self, rng: np.random.Generator) -> Objects:
        k, c = self.cfg.objects, self.cfg
        colour = rng.choice(np.arange(1, COLOURS), size=k, replace=False)
        size = rng.choice(SIZES, size=k)
        x = rng.integers(0, c.width - size + 1)  # inclusive bounds [0, W - s]
        y = rng.integers(0, c.height - size + 1)
        vel = self.velocities[rng.integers(0, len(self.velocities), size=k)]
        return Objects(colour, size, np.stack([x, y], axis=1), vel)

    def video(self, rng: np.random.Generator) -> tuple[np.ndarray, list[Objects]]:
        """One video.

        Args:
            rng: the random generator (videos drawn one after another from it differ).

        Returns:
            (T, H, W) uint8 frames, and the objects' states at each of them.
        """
        c = self.cfg
        obj = self.initial(rng)
        states = [obj]
        for _ in range(c.frames - 1):
            turn = rng.random(c.objects) < c.turn_prob
            if turn.any():
                drawn = self.velocities[rng.integers(0, len(self.velocities), size=c.objects)]
                obj = Objects(obj.colour, obj.size, obj.pos, np.where(turn[:, None], drawn, obj.vel))
            obj = step(obj, c.height, c.width)
            states.append(obj)
        return np.stack([render(s, c.height, c.width) for s in states]), states

    def generate(self, n: int, seed: int = 0) -> np.ndarray:
        """(n, T, H, W) uint8: `n` videos, the same for the same seed.

        Args:
            n: videos.
            seed: random seed.

        Returns:
            The videos.
        """
        if n < 0:
            raise UserError(f"the number of videos must be >= 0, got {n}")
        rng = np.random.default_rng(seed)
        c = self.cfg
        out = np.zeros((n, c.frames, c.height, c.width), dtype=np.uint8)
        for i in range(n):
            out[i] = self.video(rng)[0]
        return out
