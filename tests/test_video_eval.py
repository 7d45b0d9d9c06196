"""The measures video runs are scored by, on frames drawn by hand."""

import numpy as np

from hiertok.video_objects import after_bounce, box_sizes, centroids, centroids_agree, objects_right


def frame(*squares: tuple[int, int, int, int]) -> np.ndarray:
    """An 8 x 8 frame with squares (colour, x, y, size) painted in the given order."""
    f = np.zeros((8, 8), np.uint8)
    for colour, x, y, s in squares:
        f[y : y + s, x : x + s] = colour
    return f


def test_centroids_and_boxes_are_per_colour():
    f = frame((1, 0, 0, 2), (3, 4, 5, 3))
    centres, present = centroids(f)
    assert present.tolist() == [True, False, True]
    assert centres[0].tolist() == [0.5, 0.5] and centres[2].tolist() == [6.0, 5.0]  # (y, x)
    assert box_sizes(f).tolist() == [[2, 2], [0, 0], [3, 3]]
    covered = frame((1, 0, 0, 3), (2, 1, 1, 2))  # colour 2 covers colour 1's lower-right corner
    assert box_sizes(covered).tolist()[0] == [3, 3] and centroids(covered)[1].tolist() == [True, True, False]


def test_objects_right_counts_colour_size_and_place_within_a_pixel():
    true = np.stack([frame((1, 2, 2, 2), (2, 5, 5, 3))] * 2)
    assert objects_right(true, true) == 1.0
    shifted = np.stack([frame((1, 3, 2, 2), (2, 5, 5, 3)), frame((1, 4, 2, 2), (2, 5, 5, 3))])  # 1 px, then 2 px
    assert objects_right(shifted, true) == 0.75
    resized = np.stack([frame((1, 2, 2, 3), (2, 5, 5, 3))] * 2)  # colour 1 drawn 3 wide: centroid moves 0.5
    assert objects_right(resized, true) == 0.5
    recoloured = np.stack([frame((3, 2, 2, 2), (2, 5, 5, 3))] * 2)  # colour 1 missing
    assert objects_right(recoloured, true) == 0.5
    assert objects_right(np.zeros_like(true), np.zeros_like(true)) == 0.0  # no objects: nothing right


def test_centroids_agree_fails_a_colour_present_in_one_frame_only():
    a = frame((1, 2, 2, 2))
    assert centroids_agree(a, a) and centroids_agree(frame((1, 3, 3, 2)), a)  # 1 px on each axis
    assert not centroids_agree(frame((1, 4, 2, 2)), a)  # 2 px in x
    assert not centroids_agree(frame((1, 2, 2, 2), (2, 6, 6, 2)), a)  # an extra colour
    assert not centroids_agree(np.zeros_like(a), a)  # a missing one
    assert centroids_agree(np.zeros_like(a), np.zeros_like(a))


def test_after_bounce_marks_the_frame_after_a_reversal():
    xs = [1, 0, 1, 2, 3, 4, 5, 6, 5]  # a 2-wide square off the left wall at frame 2 and the right wall at frame 8
    video = np.stack([frame((2, x, 3, 2)) for x in xs])[None]
    assert np.flatnonzero(after_bounce(video)[0]).tolist() == [2, 8]
    still = np.stack([frame((2, 3, 3, 2))] * 4)[None]  # no motion is no bounce
    assert not after_bounce(still).any()
