"""The one sampling rule: stratified by class, seeded, and described in every report."""

from collections import Counter

import numpy as np
import pytest

from edgepose.converters.calibration import from_folder, stratified_sample
from edgepose.data.splits import Sample
from edgepose.sampling import stratified_indices, take

# The case: class folders sorted by name, 539 files, the first 200 all one class.
LABELS = ["a"] * 200 + ["b"] * 200 + ["c"] * 139


def test_the_first_n_of_a_sorted_listing_is_not_what_is_taken():
    choice = stratified_indices(LABELS, 90, seed=0)
    counts = Counter(take(LABELS, choice))
    assert counts == {"a": 34, "b": 33, "c": 23}  # 90 * 200/539 = 33.4, 90 * 139/539 = 23.2
    assert choice.describe() == "90 of 539 samples (stratified by class, seed 0)"


def test_quotas_sum_to_n_and_keep_the_last_class():
    # Rounding each class up on its own gives 1 + 1 + 1 + ... > n; cutting the tail used
    # to drop the last classes. Ten classes of 3 and one of 100, n = 12: every class kept.
    labels = [f"c{i}" for i in range(10) for _ in range(3)] + ["big"] * 100
    choice = stratified_indices(labels, 12, seed=0)
    assert choice.count == 12
    assert set(take(labels, choice)) == set(labels)  # 11 classes, all present


def test_fewer_samples_than_classes_take_one_each_of_seeded_classes():
    labels = ["a"] * 5 + ["b"] * 5 + ["c"] * 5
    choice = stratified_indices(labels, 2, seed=1)
    assert choice.count == 2 and len(set(take(labels, choice))) == 2
    assert stratified_indices(labels, 2, seed=1).indices == choice.indices


def test_same_seed_same_choice_other_seed_other_choice():
    first = stratified_indices(LABELS, 60, seed=3).indices
    assert stratified_indices(LABELS, 60, seed=3).indices == first
    assert stratified_indices(LABELS, 60, seed=4).indices != first
    assert first == sorted(first)


def test_all_samples_when_n_is_none_or_larger():
    assert stratified_indices(LABELS, None).describe() == "all 539 samples"
    assert stratified_indices(LABELS, 1000, source="x").describe() == "all 539 samples from x"


def test_unlabelled_data_is_a_seeded_random_sample():
    choice = stratified_indices([0] * 50, 5, seed=0, source="calib.npy")
    assert choice.describe() == "5 of 50 samples (seeded random, seed 0) from calib.npy"
    assert choice.indices != [0, 1, 2, 3, 4]


def test_n_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        stratified_indices(LABELS, 0)


def test_calibration_stratified_sample_uses_the_same_rule():
    samples = [Sample(f"{i}.png", ["a", "b", "c"].index(label)) for i, label in
               enumerate(LABELS)]
    chosen = stratified_sample(samples, 90, seed=0)
    assert Counter(s.label for s in chosen) == {0: 34, 1: 33, 2: 23}


def test_calibration_npy_is_sampled_not_cut(tmp_path):
    x = np.arange(40, dtype=np.float32).reshape(40, 1, 1) * np.ones((40, 2, 2), np.float32)
    path = tmp_path / "calib.npy"
    np.save(path, x)
    calib = from_folder(path, {"task": "keypoints"}, n=10, seed=0)
    assert len(calib) == 10
    assert calib.x[:, 0, 0].tolist() != list(range(10))  # not the first ten rows
    assert calib.description == f"10 of 40 samples (seeded random, seed 0) from {path}"
