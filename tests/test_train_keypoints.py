"""The keypoint trainer on the real derived-label poses dataset: normalisation, mirror, run dir."""

import json

import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.data.poses import CLASSES, build_poses
from edgepose.pose import PoseEstimator
from edgepose.runtime.layouts import get_layout
from tests.assets import asset_path


@pytest.fixture(scope="module")
def poses_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("poses")
    build_poses(out, per_photo=30, seed=0, layout="coco17",
                landmark_model=asset_path("pose_landmark_full.tflite"),
                detector_model=asset_path("pose_detection.tflite"))
    return out


@pytest.fixture(scope="module")
def run_dir(poses_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    result = CliRunner().invoke(main, [
        "train", "keypoints", str(poses_dir), "--layout", "coco17", "--hidden", "32,16",
        "--epochs", "30", "--patience", "0", "--output", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def astronaut_vector():
    estimator = PoseEstimator.from_files(asset_path("pose_landmark_full.tflite"),
                                         asset_path("pose_detection.tflite"))
    return estimator.estimate(skimage.data.astronaut()).vector("coco17")


def _model(run_dir):
    import keras

    return keras.saving.load_model(str(run_dir / "model.keras"), compile=False)


def test_poses_dataset_has_both_derived_classes(poses_dir):
    report = json.loads((poses_dir / "poses_report.json").read_text())
    assert all(report["counts"][c] >= 10 for c in CLASSES)
    sample = next((poses_dir / "posture" / CLASSES[1]).glob("*.json"))
    assert json.loads(sample.read_text())["shoulder_tilt_deg"] > 16


def test_run_directory_is_complete_with_keypoint_config(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["task"] == "keypoints" and config["keypoint_layout"] == "coco17"
    assert "preprocessing" not in config
    for name in ("model.keras", "labels.txt", "splits.json", "history.csv", "metrics.json",
                 "confusion_matrix.png"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "INCOMPLETE").exists()


def test_saved_model_contains_the_normalisation_and_no_augmentation(run_dir):
    model = _model(run_dir)
    names = [layer.name for layer in model.layers]
    assert "normalization" in names and "augmentation" not in names
    assert model.input_shape == (None, 34)


def test_translating_and_scaling_keypoints_leaves_the_output_unchanged(run_dir,
                                                                       astronaut_vector):
    model = _model(run_dir)
    points = astronaut_vector.reshape(17, 2)
    present = (points != 0).any(axis=1, keepdims=True)  # unseen joints stay (0, 0)
    moved = ((points - 0.5) * 0.6 + np.array([0.55, 0.45], dtype=np.float32)) * present
    a = model.predict_on_batch(astronaut_vector[None])
    b = model.predict_on_batch(moved.reshape(1, -1).astype(np.float32))
    assert np.allclose(a, b, atol=1e-4)


def test_mirror_augmentation_swaps_left_and_right_joints(astronaut_vector):
    from edgepose.train.keypoint_layers import KeypointAugmentation

    layout = get_layout("coco17")
    layer = KeypointAugmentation.for_layout(layout, mirror=1.0, rotation=0.0, scale=0.0,
                                            jitter=0.0, seed=0)
    out = np.asarray(layer(astronaut_vector[None], training=True)).reshape(17, 2)
    src = astronaut_vector.reshape(17, 2)
    left, right = layout.index("left_shoulder"), layout.index("right_shoulder")
    assert np.allclose(out[left], (1 - src[right, 0], src[right, 1]), atol=1e-6)
    assert np.allclose(out[right], (1 - src[left, 0], src[left, 1]), atol=1e-6)
    assert np.allclose(np.asarray(layer(astronaut_vector[None], training=False))[0],
                       astronaut_vector)


def test_body_normalisation_ignores_missing_joints(astronaut_vector):
    import keras

    from edgepose.train.keypoint_layers import normalize_keypoints

    layout = get_layout("coco17")
    missing = astronaut_vector.copy().reshape(17, 2)
    missing[layout.index("left_ankle")] = 0.0  # not found
    out = np.asarray(normalize_keypoints(keras.ops.convert_to_tensor(missing.reshape(1, -1)),
                                         17, 2, layout.hips, layout.shoulders))
    assert np.isfinite(out).all() and np.allclose(out.reshape(17, 2)[15], 0.0)


def test_model_converts_to_int8_tflite_with_builtin_ops_only(run_dir, astronaut_vector):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    model = _model(run_dir)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([astronaut_vector[None] * s] for s in
                                                np.linspace(0.8, 1.1, 8, dtype=np.float32))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    assert interpreter.get_input_details()[0]["shape"].tolist()[-1] == 34


def test_eval_cli_reports_the_test_split(run_dir):
    result = CliRunner().invoke(main, ["eval", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["split"] == "test" and metrics["classes"] == list(CLASSES)


def test_a_poses_dataset_with_an_empty_class_is_a_one_line_error(tmp_path):
    """--per-photo 1: three photos, no tilted shoulders among them; `train keypoints` would
    refuse the folder, so `data poses` says so (exit 2) instead of a silent success."""
    result = CliRunner().invoke(main, [
        "data", "poses", str(tmp_path / "poses"), "--per-photo", "1",
        "--landmark-model", str(asset_path("pose_landmark_full.tflite")),
        "--detector-model", str(asset_path("pose_detection.tflite"))])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {tmp_path / 'poses' / 'posture'}: no samples for "
                      f"'{CLASSES[1]}' from 3 variants (0 without a person, 1 between the "
                      "classes): raise --per-photo"]
    report = json.loads((tmp_path / "poses" / "poses_report.json").read_text())
    assert report["counts"] == {CLASSES[0]: 2, CLASSES[1]: 0}
