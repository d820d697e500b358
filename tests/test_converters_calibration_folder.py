"""What a calibration folder holds, read and judged: unreadable files skipped and listed,
odd image modes decoded to the right pixels, one class refused, imbalance and too few warned.

Real files decoded by Pillow through the device's preprocessing; no TensorFlow here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgepose.converters import calibration as calib
from edgepose.converters.calibration import CalibrationSet
from edgepose.errors import DataError
from edgepose.runtime.preprocess import ImagePreprocessing

CONFIG = {"task": "image", "preprocessing": ImagePreprocessing(32, 32).to_dict()}
LABELS = ["dark", "mid", "bright"]


def _grey(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((32, 32, 3), value, np.uint8), "RGB").save(path)
    return path


def _classes(root: Path, counts: dict[str, int]) -> Path:
    for name, count in counts.items():
        for i in range(count):
            _grey(root / name / f"{i}.png", 10 * (1 + LABELS.index(name)) + i % 5)
    return root


def _truncated_jpeg(path: Path) -> Path:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise, "RGB").save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_unreadable_calibration_files_are_skipped_and_listed_with_their_reason(tmp_path):
    root = _classes(tmp_path / "calib", {"dark": 3, "mid": 3, "bright": 3})
    _truncated_jpeg(root / "dark" / "cut.jpg")
    (root / "mid" / "notes.png").write_text("this is not a picture\n")
    (root / "bright" / "empty.png").write_bytes(b"")
    data = calib.from_folder(root, CONFIG)
    assert len(data) == 9
    reasons = dict(data.skipped)
    assert set(reasons) == {"dark/cut.jpg", "mid/notes.png", "bright/empty.png"}
    assert reasons["mid/notes.png"] == "not a readable image (no image format recognised)"
    assert reasons["bright/empty.png"] == "empty file"
    assert reasons["dark/cut.jpg"].startswith("not a readable image (OSError: image file is "
                                              "truncated")
    assert not any(p in data.paths for p in reasons)
    assert data.report_fields()["skipped"][0] == {"file": "bright/empty.png",
                                                  "reason": "empty file"}


def test_a_calibration_folder_with_nothing_readable_is_a_data_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"")
    (tmp_path / "a" / "y.png").write_text("text")
    with pytest.raises(DataError) as info:
        calib.from_folder(tmp_path, CONFIG)
    assert str(info.value) == (f"{tmp_path}: none of the 2 calibration files chosen is "
                               "readable (e.g. a/x.png: empty file)")


@pytest.mark.parametrize("mode, make, expected", [
    # 16-bit greyscale maps 0..65535 onto 0..255: 32896 -> 128 (not clipped to 255)
    ("I;16", lambda: Image.fromarray(np.full((32, 32), 32896, np.uint16)), 128),
    ("L", lambda: Image.fromarray(np.full((32, 32), 77, np.uint8), "L"), 77),
    # fully transparent pixels are composited over white, as viewers show them
    ("RGBA", lambda: Image.fromarray(np.zeros((32, 32, 4), np.uint8), "RGBA"), 255),
    ("P", lambda: Image.fromarray(np.full((32, 32, 3), 200, np.uint8), "RGB").convert(
        "P", palette=Image.Palette.ADAPTIVE), 200),
])
def test_images_of_another_mode_are_calibrated_on_their_right_rgb_values(tmp_path, mode,
                                                                         make, expected):
    image = make()
    assert image.mode == mode
    (tmp_path / "c").mkdir()
    image.save(tmp_path / "c" / "odd.png")
    data = calib.from_folder(tmp_path, CONFIG)
    assert data.skipped == [] and data.x.shape == (1, 32, 32, 3)
    assert np.all(data.x == expected)


def test_one_class_folder_for_a_multi_class_model_is_refused(tmp_path):
    data = calib.from_folder(_classes(tmp_path, {"dark": 120}), CONFIG)
    assert data.class_counts == {"dark": 120}
    with pytest.raises(DataError) as info:
        data.check_classes(LABELS)
    assert str(info.value) == (
        f"{tmp_path}: calibration data has one class folder ('dark', 120 files) for a model "
        "with 3 classes: int8 ranges calibrated on one class clip the others; add the other "
        "classes, or pass --allow-one-class")


def test_one_class_allowed_by_the_user_is_kept_and_said(tmp_path):
    data = calib.from_folder(_classes(tmp_path, {"mid": 120}), CONFIG)
    assert data.check_classes(LABELS, allow_one_class=True) == [
        "calibration has one class folder ('mid') for a model with 3 classes "
        "(--allow-one-class)"]


def test_class_folders_that_leave_out_some_of_the_models_classes_are_warned(tmp_path):
    data = calib.from_folder(_classes(tmp_path, {"dark": 60, "bright": 60}), CONFIG)
    assert data.check_classes(LABELS) == [
        "calibration has no class folder for 1 of the model's 3 classes: mid"]


def test_a_one_class_model_may_calibrate_on_its_one_class(tmp_path):
    data = calib.from_folder(_classes(tmp_path, {"dark": 120}), CONFIG)
    assert data.check_classes(["dark"]) == []


def test_heavy_imbalance_is_warned_with_both_counts(tmp_path):
    data = calib.from_folder(_classes(tmp_path, {"dark": 110, "mid": 10, "bright": 80}), CONFIG,
                             n=1000)
    assert data.class_counts == {"bright": 80, "dark": 110, "mid": 10}
    assert data.check_classes(LABELS) == [
        "calibration classes are unbalanced: 'dark' has 110 files, 'mid' 10 "
        "(11x, warned above 10x)"]


def test_imbalance_at_the_threshold_is_not_warned(tmp_path):
    data = calib.from_folder(_classes(tmp_path, {"dark": 100, "mid": 10, "bright": 50}), CONFIG)
    assert data.check_classes(LABELS) == []


def test_too_few_samples_are_warned_with_the_tflite_guidance(tmp_path):
    data = calib.from_folder(_classes(tmp_path, {"dark": 4, "mid": 4, "bright": 4}), CONFIG)
    assert data.check_classes(LABELS) == [
        "calibration uses only 12 samples; TFLite's post-training quantization guide "
        "suggests about 100-500"]


def test_too_few_counts_what_was_readable_not_what_was_listed(tmp_path):
    root = _classes(tmp_path, {"dark": 34, "mid": 33, "bright": 33})
    (root / "dark" / "broken.png").write_bytes(b"")
    data = calib.from_folder(root, CONFIG)
    assert len(data) == 100 and data.class_counts["dark"] == 35
    assert data.check_classes(LABELS) == []
    (root / "mid" / "0.png").write_bytes(b"")  # one readable sample less: 99
    assert calib.from_folder(root, CONFIG).check_classes(LABELS)[-1].startswith(
        "calibration uses only 99 samples")


def test_a_flat_folder_or_an_npy_cannot_be_checked_for_classes_and_says_so(tmp_path):
    for i in range(100):
        _grey(tmp_path / "flat" / f"{i}.png", i)
    flat = calib.from_folder(tmp_path / "flat", CONFIG)
    assert flat.class_counts == {".": 100}
    assert flat.check_classes(LABELS) == [
        "calibration folder has no class folders: edgepose cannot check that it covers "
        "every class"]
    np.save(tmp_path / "x.npy", np.zeros((100, 32, 32, 3), np.float32))
    npy = calib.from_folder(tmp_path / "x.npy", CONFIG)
    assert npy.check_classes(LABELS) == [
        "calibration data carries no classes (.npy): edgepose cannot check that it covers "
        "every class"]


def test_class_counts_are_what_the_whole_folder_holds_not_the_sample(tmp_path):
    data = calib.from_folder(_classes(tmp_path, {"dark": 40, "mid": 40, "bright": 3}), CONFIG,
                             n=21)
    assert len(data) == 21
    assert data.class_counts == {"bright": 3, "dark": 40, "mid": 40}
    assert data.check_classes(LABELS) == [
        "calibration classes are unbalanced: 'dark' has 40 files, 'bright' 3 "
        "(13.3x, warned above 10x)",
        "calibration uses only 21 samples; TFLite's post-training quantization guide "
        "suggests about 100-500"]


def test_check_classes_keeps_its_warnings_for_the_report():
    data = CalibrationSet(np.zeros((3, 4), np.float32), "x.npy")
    data.check_classes(["a", "b"])
    assert data.report_fields() == {
        "class_counts": None, "skipped": [],
        "warnings": ["calibration data carries no classes (.npy): edgepose cannot check that "
                     "it covers every class",
                     "calibration uses only 3 samples; TFLite's post-training quantization "
                     "guide suggests about 100-500"]}
