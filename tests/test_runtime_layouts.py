"""Keypoint layouts: sizes, joint pairs, and building them from BlazePose landmarks."""

import numpy as np
import pytest

from edgepose.errors import ConfigError
from edgepose.runtime.layouts import LAYOUTS, get_layout


def test_layout_vector_lengths():
    assert get_layout("coco17").size == 34
    assert get_layout("mediapipe33").size == 132
    assert get_layout("body14").size == 28


def test_mirror_permutation_swaps_every_left_right_pair():
    layout = get_layout("coco17")
    perm = layout.mirror_permutation
    assert perm[layout.index("left_wrist")] == layout.index("right_wrist")
    assert perm[layout.index("nose")] == layout.index("nose")
    assert sorted(perm) == list(range(layout.num_joints))


def test_every_layout_has_hips_and_shoulders():
    for layout in LAYOUTS.values():
        assert len(set(layout.hips)) == 2 and len(set(layout.shoulders)) == 2


def test_body14_neck_is_the_shoulder_midpoint():
    landmarks = np.zeros((33, 4), dtype=np.float32)
    landmarks[11, :2] = (0.6, 0.4)
    landmarks[12, :2] = (0.4, 0.2)
    vector = get_layout("body14").reshape(get_layout("body14").from_landmarks(landmarks))
    assert np.allclose(vector[1], (0.5, 0.3))


def test_unknown_layout_is_a_config_error():
    with pytest.raises(ConfigError, match="coco17"):
        get_layout("openpose25")
