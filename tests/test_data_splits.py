"""Train/val/test splits of image folders, their splits.json, and class weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from edgepose.data.balance import class_weights
from edgepose.data.images import build_image_splits
from edgepose.data.splits import Sample, Splits, stratified_split
from edgepose.errors import ConfigError, DataError

# Imbalanced on purpose: 20 / 12 / 6 real handwritten digits.
COUNTS = {"zero": (0, 20), "three": (3, 12), "eight": (8, 6)}


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _write(folder: Path, digits, digit: int, rows: range | list[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for row in np.flatnonzero(digits.target == digit)[list(rows)]:
        grey = (digits.images[row] * (255 / 16)).astype(np.uint8)
        Image.fromarray(grey).resize((24, 24), Image.BICUBIC).save(folder / f"{row}.png")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, digits) -> Path:
    root = tmp_path_factory.mktemp("digits")
    for name, (digit, n) in COUNTS.items():
        _write(root / name, digits, digit, range(n))
    return root


def _assignment(report) -> dict[str, str]:
    return {s.path: s.split for s in report.splits.items}


def test_split_is_deterministic_for_a_seed(dataset):
    first = build_image_splits(dataset, seed=3, check_leaks=False)
    second = build_image_splits(dataset, seed=3, check_leaks=False)
    assert first.splits.items == second.splits.items


def test_another_seed_gives_another_split(dataset):
    a = _assignment(build_image_splits(dataset, seed=0, check_leaks=False))
    b = _assignment(build_image_splits(dataset, seed=1, check_leaks=False))
    assert a.keys() == b.keys()
    assert a != b


def test_split_is_stratified_with_every_class_in_test(dataset):
    report = build_image_splits(dataset, seed=0, check_leaks=False)
    counts = report.splits.counts()
    # round(n * 0.15) per class for val and test, at least one test image each.
    assert counts["test"] == {"eight": 1, "three": 2, "zero": 3}
    assert counts["val"] == {"eight": 1, "three": 2, "zero": 3}
    assert counts["train"] == {"eight": 4, "three": 8, "zero": 14}
    assert not report.predefined_splits


def test_split_is_saved_and_reloaded_as_splits_json(dataset, tmp_path):
    splits = build_image_splits(dataset, seed=5, check_leaks=False).splits
    path = splits.save(tmp_path / "splits.json")
    loaded = Splits.load(path)
    assert loaded == splits
    assert loaded.seed == 5 and loaded.fractions == (0.7, 0.15, 0.15)
    assert all(loaded.absolute(s).is_file() for s in loaded.items)


def test_existing_train_val_test_folders_are_honoured(tmp_path, digits):
    root = tmp_path / "data"
    for digit, name in ((1, "one"), (7, "seven")):
        _write(root / "train" / name, digits, digit, range(0, 6))
        _write(root / "val" / name, digits, digit, range(6, 8))
        _write(root / "test" / name, digits, digit, range(8, 11))
    report = build_image_splits(root, seed=0, check_leaks=False)
    assert report.predefined_splits
    assert report.splits.classes == ["one", "seven"]
    for sample in report.splits.items:
        split, class_name = sample.path.split("/")[:2]
        assert sample.split == split
        assert report.splits.classes[sample.label] == class_name
    assert report.splits.counts()["test"] == {"one": 3, "seven": 3}


def test_missing_test_folder_is_carved_from_train(tmp_path, digits):
    root = tmp_path / "data"
    for digit, name in ((1, "one"), (7, "seven")):
        _write(root / "train" / name, digits, digit, range(0, 10))
        _write(root / "val" / name, digits, digit, range(10, 12))
    report = build_image_splits(root, seed=0, check_leaks=False)
    assert report.splits.extra["carved_from_train"] == ["test"]
    for sample in report.splits.items:
        if sample.path.startswith("val/"):
            assert sample.split == "val"
        else:
            assert sample.split in ("train", "test")
    assert all(n >= 1 for n in report.splits.counts()["test"].values())


def test_a_class_only_in_test_folder_is_an_error(tmp_path, digits):
    root = tmp_path / "data"
    _write(root / "train" / "one", digits, 1, range(4))
    _write(root / "test" / "one", digits, 1, range(4, 6))
    _write(root / "test" / "seven", digits, 7, range(2))
    with pytest.raises(DataError, match="no readable images in train") as info:
        build_image_splits(root)
    assert info.value.path == root.resolve() / "train" / "seven"


def test_every_class_keeps_a_training_sample_whatever_the_fractions():
    labels = [0, 0, 1, 1, 1]
    assignment = stratified_split(labels, (0.0, 0.2, 0.8), seed=0)
    for label in (0, 1):
        splits = [s for s, lab in zip(assignment, labels, strict=True) if lab == label]
        assert "train" in splits and "test" in splits


def test_bad_fractions_are_a_config_error(dataset):
    with pytest.raises(ConfigError, match="sum to 1"):
        build_image_splits(dataset, fractions=(0.8, 0.15, 0.15))


# --- class weights ----------------------------------------------------------------------

def _splits(train_counts: list[int]) -> Splits:
    items = [Sample(f"c{label}/{i}.png", label, "train")
             for label, n in enumerate(train_counts) for i in range(n)]
    # Held-out samples must not change the weights.
    items += [Sample(f"c0/held{i}.png", 0, split) for i, split in enumerate(["val", "test"] * 5)]
    return Splits(task="image", root="/data", classes=[f"c{k}" for k in
                                                       range(len(train_counts))], items=items)


def test_auto_class_weights_are_balanced():
    # 10 training samples, 3 classes: weight_c = 10 / (3 * n_c).
    weights = class_weights(_splits([6, 3, 1]), mode="auto")
    assert weights == pytest.approx({0: 10 / 18, 1: 10 / 9, 2: 10 / 3})
    assert weights[0] == pytest.approx(0.5556, abs=1e-4)
    assert weights[2] == pytest.approx(3.3333, abs=1e-4)


def test_balanced_data_gets_equal_weights():
    assert class_weights(_splits([4, 4]), mode="auto") == {0: 1.0, 1: 1.0}


def test_class_weights_none_mode_returns_none():
    assert class_weights(_splits([6, 3, 1]), mode="none") is None


def test_unknown_class_weight_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="auto, none"):
        class_weights(_splits([6, 3]), mode="balanced")


def test_class_without_training_samples_cannot_be_weighted():
    with pytest.raises(DataError, match="c1"):
        class_weights(_splits([6, 0]), mode="auto")


def test_class_weights_of_a_real_imbalanced_split(dataset):
    splits = build_image_splits(dataset, seed=0, check_leaks=False).splits
    weights = class_weights(splits)
    # train: eight 4, three 8, zero 14 -> 26 / (3 * n)
    assert splits.classes == ["eight", "three", "zero"]
    assert weights == pytest.approx({0: 26 / 12, 1: 26 / 24, 2: 26 / 42})


def test_missing_val_folder_is_carved_from_train(tmp_path, digits):
    root = tmp_path / "data"
    for digit, name in ((1, "one"), (7, "seven")):
        _write(root / "train" / name, digits, digit, range(0, 10))
        _write(root / "test" / name, digits, digit, range(10, 12))
    report = build_image_splits(root, seed=0, check_leaks=False)
    assert report.splits.extra["carved_from_train"] == ["val"]
    assert {s.path.split("/")[0] for s in report.splits.samples("val")} == {"train"}
    assert {s.path.split("/")[0] for s in report.splits.samples("test")} == {"test"}
    assert all(n >= 1 for n in report.splits.counts()["val"].values())


def test_a_validation_folder_counts_as_val(tmp_path, digits):
    root = tmp_path / "data"
    for digit, name in ((1, "one"), (7, "seven")):
        _write(root / "train" / name, digits, digit, range(0, 4))
        _write(root / "validation" / name, digits, digit, range(4, 6))
        _write(root / "test" / name, digits, digit, range(6, 8))
    splits = build_image_splits(root, check_leaks=False).splits
    assert {s.path for s in splits.samples("val")} == {
        s.path for s in splits.items if s.path.startswith("validation/")}
    assert splits.extra["carved_from_train"] == []


def test_train_folder_beside_class_folders_is_an_error(tmp_path, digits):
    root = tmp_path / "data"
    _write(root / "train" / "one", digits, 1, range(4))
    _write(root / "test" / "one", digits, 1, range(4, 6))
    _write(root / "seven", digits, 7, range(4))
    with pytest.raises(DataError, match=r"other folders \(seven\)"):
        build_image_splits(root, check_leaks=False)


def test_a_class_named_train_that_holds_images_is_just_a_class(tmp_path, digits):
    root = tmp_path / "data"
    _write(root / "train", digits, 2, range(4))
    _write(root / "tram", digits, 3, range(4))
    report = build_image_splits(root, check_leaks=False)
    assert not report.predefined_splits
    assert report.splits.classes == ["train", "tram"]
