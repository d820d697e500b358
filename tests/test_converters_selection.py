"""Auto-fallback judges a candidate by the points it LOSES, which lucky flips cannot cancel."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.converters.selection import flips, lost_points


def _labels(n: int = 20) -> np.ndarray:
    return np.arange(n) % 4


def test_flips_both_ways_cancel_in_the_net_drop_but_not_in_the_points_lost():
    # the MobileNetV2-96 case in miniature: net 0, yet 1 sample in 10 flipped each way
    y = _labels()
    reference = y.copy()
    reference[[18, 19]] = (y[[18, 19]] + 1) % 4  # Keras wrong on 2 of 20
    candidate = reference.copy()
    candidate[[0, 1]] = (y[[0, 1]] + 1) % 4  # int8 breaks 2 that Keras had right
    candidate[[18, 19]] = y[[18, 19]]  # and fixes the 2 Keras had wrong
    result = flips(reference, candidate, y)
    assert result.net_drop == pytest.approx(0.0)
    assert result.lost == pytest.approx(10.0)
    assert result.gained == pytest.approx(10.0)
    assert result.disagree == pytest.approx(20.0)
    assert lost_points(reference, candidate, y) == pytest.approx(10.0)


def test_without_gains_the_points_lost_equal_the_net_drop():
    y = _labels()
    candidate = y.copy()
    candidate[:3] = (y[:3] + 2) % 4
    result = flips(y, candidate, y)
    assert result.lost == pytest.approx(15.0)
    assert result.net_drop == pytest.approx(15.0)
    assert result.gained == 0.0


def test_a_flip_between_two_wrong_classes_disagrees_but_loses_nothing():
    y = _labels()
    reference = y.copy()
    reference[5] = (y[5] + 1) % 4
    candidate = reference.copy()
    candidate[5] = (y[5] + 2) % 4  # still wrong, another class
    result = flips(reference, candidate, y)
    assert (result.lost, result.gained) == (0.0, 0.0)
    assert result.disagree == pytest.approx(5.0)


def test_identical_predictions_lose_nothing():
    y = _labels()
    assert flips(y, y, y) == flips(y.copy(), y.copy(), y.copy())
    assert lost_points(y, y, y) == 0.0


def test_points_lost_bound_the_net_drop_from_above():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 269)
    for _ in range(20):
        reference = np.where(rng.random(269) < 0.9, y, rng.integers(0, 10, 269))
        candidate = np.where(rng.random(269) < 0.9, reference, rng.integers(0, 10, 269))
        result = flips(reference, candidate, y)
        assert result.lost >= result.net_drop
        assert result.disagree >= result.lost + result.gained - 1e-9


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="need equal, non-empty prediction arrays, got 3, 2 and 3"):
        flips(np.zeros(3), np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="got 0, 0 and 0"):
        flips(np.zeros(0), np.zeros(0), np.zeros(0))
