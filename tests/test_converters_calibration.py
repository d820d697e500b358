"""Calibration data: a stratified train sample by default, never the test split."""

from __future__ import annotations

import numpy as np
import pytest

import edgepose.runtime.preprocess as preprocess
from edgepose.converters import calibration as calib
from edgepose.converters.calibration import stratified_sample
from edgepose.errors import ConversionError, DataError
from edgepose.rundir import RunDir


def test_calibration_never_opens_a_test_image(digits_run, monkeypatch):  # noqa: F811
    run = RunDir.open(digits_run)
    splits = run.splits
    test_files = {str(splits.absolute(s)) for s in splits.samples("test")}
    opened: list[str] = []
    real_load = preprocess.load_rgb

    def recording_load(path, *args, **kwargs):
        opened.append(str(path))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(preprocess, "load_rgb", recording_load)
    data = calib.from_run(splits, run.config, n=10_000)  # ask for more than train has
    assert len(opened) == len(data) == len(splits.samples("train"))
    assert not test_files & set(opened)


def test_stratified_sample_keeps_every_class_and_is_seeded(digits_run):  # noqa: F811
    train = RunDir.open(digits_run).splits.samples("train")
    first = stratified_sample(train, 40, seed=3)
    assert len(first) == 40
    assert {s.label for s in first} == set(range(10))
    assert stratified_sample(train, 40, seed=3) == first
    assert stratified_sample(train, 40, seed=4) != first


def test_calibration_samples_are_the_device_inputs(digits_run):  # noqa: F811
    run = RunDir.open(digits_run)
    data = calib.from_run(run.splits, run.config, n=20)
    assert data.x.dtype == np.uint8 and data.x.shape == (20, 32, 32, 3)
    sample = next(iter(data.representative_dataset()()))[0]
    assert sample.shape == (1, 32, 32, 3) and sample.dtype == np.float32


def test_calib_data_folder_of_images_is_used(digits_run):  # noqa: F811
    run = RunDir.open(digits_run)
    data = calib.from_folder(run.splits.root, run.config, n=25)
    assert data.x.shape == (25, 32, 32, 3)


def test_empty_calibration_folder_is_a_data_error(digits_run, tmp_path):  # noqa: F811
    with pytest.raises(DataError, match="no images in the calibration folder") as info:
        calib.from_folder(tmp_path, RunDir.open(digits_run).config)
    assert info.value.path == tmp_path


def test_calibration_data_of_the_wrong_shape_is_a_conversion_error(tmp_path):
    np.save(tmp_path / "calib.npy", np.zeros((8, 48, 48, 3), dtype=np.uint8))
    data = calib.from_folder(tmp_path / "calib.npy", {"task": "image"})
    with pytest.raises(ConversionError, match=r"shape \(48, 48, 3\).*expects \(32, 32, 3\)"):
        data.check_shape((32, 32, 3), tmp_path / "model.keras")


def test_keypoint_calibration_folder_leaves_out_vectors_with_no_person(tmp_path):
    import json

    from tests.keypoint_poses import write_pose_dataset

    folder = write_pose_dataset(tmp_path, "pixels", per_class=6)
    poses = sorted(folder.rglob("*.json"))
    (folder / "up" / "zero.json").write_text(json.dumps({"keypoints": [0.0] * 28}))
    (folder / "up" / "nan.json").write_text(json.dumps({"keypoints": [None] * 28}))
    few = [0.0] * 28
    few[:4] = [100.0, 200.0, 110.0, 210.0]  # 2 of 14 joints: not a person
    (folder / "down" / "few.json").write_text(json.dumps({"keypoints": few}))
    data = calib.from_folder(folder, {"task": "keypoints", "keypoint_layout": "body14"}, n=100)
    assert len(data) == len(poses) == 12
    assert not any(name.endswith(("zero.json", "nan.json", "few.json")) for name in data.paths)
    assert np.isfinite(data.x).all() and (np.abs(data.x).sum(axis=1) > 0).all()


def test_keypoint_calibration_folder_with_nobody_at_all_is_a_data_error(tmp_path):
    import json

    (tmp_path / "a").mkdir()
    for i in range(3):
        (tmp_path / "a" / f"{i}.json").write_text(json.dumps({"keypoints": [0.0] * 28}))
    with pytest.raises(DataError, match=r"all 3 keypoint files hold no person \(e\.g\. 0\.json: "
                                        r"no person: all 28 keypoint numbers are 0\)"):
        calib.from_folder(tmp_path, {"task": "keypoints", "keypoint_layout": "body14"})
