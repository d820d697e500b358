"""A calibration ``.npy`` must hold samples of the model's input shape: one-line error naming
both shapes (and the files), non-zero exit, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.cli import main
from tests import contract_models as cm


@pytest.fixture(scope="module")
def image_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shape_image")
    cm.brightness_model("rescaling").save(folder / "bright.keras")  # 32 x 32 x 3, raw pixels
    return folder / "bright.keras"


@pytest.fixture(scope="module")
def keypoint_model(tmp_path_factory) -> Path:
    import keras

    folder = tmp_path_factory.mktemp("shape_keypoints")
    inputs = keras.Input((34,))  # COCO-17 x, y
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs)).save(
        folder / "pose.keras")
    return folder / "pose.keras"


def _run(model: Path, npy: Path):
    result = CliRunner().invoke(main, ["convert", str(model), "--int8", "--calib-data",
                                       str(npy)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not list(model.parent.glob("*.tflite"))
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("shape, expected, hint", [
    ((8, 48, 48, 3), "(48, 48, 3)", ""),  # another input size
    ((8, 32, 32), "(32, 32)", ""),  # greyscale without its channel axis
    ((8, 1, 32, 32, 3), "(1, 32, 32, 3)", ""),  # a batch axis per sample
    ((8, 3, 32, 32), "(3, 32, 32)", "; the same sizes in another order: transpose the array "
                                    "to the model's layout"),  # channels first
])
def test_an_npy_of_the_wrong_sample_shape_names_both_shapes(tmp_path, image_model, shape,
                                                           expected, hint):
    npy = tmp_path / "calib.npy"
    np.save(npy, np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32))
    assert _run(image_model, npy) == [
        f"error: {image_model}: calibration data from {npy} has sample shape {expected} but "
        f"the model expects (32, 32, 3){hint}"]


def test_a_keypoint_npy_of_another_layout_names_both_lengths(tmp_path, keypoint_model):
    npy = tmp_path / "body14.npy"
    np.save(npy, np.random.default_rng(0).uniform(0, 1, (8, 28)).astype(np.float32))
    assert _run(keypoint_model, npy) == [
        f"error: {keypoint_model}: calibration data from {npy} has sample shape (28,) but the "
        "model expects (34,)"]


@pytest.mark.parametrize("array, message", [
    (np.zeros(8, np.float32), "expected an N x ... array of samples, got shape (8,)"),
    (np.zeros((0, 32, 32, 3), np.float32),
     "expected an N x ... array of samples, got shape (0, 32, 32, 3)"),
    (np.array([["a"] * 4] * 2), "expected a numeric array, got dtype <U1"),
])
def test_an_npy_that_is_not_an_array_of_samples_is_refused(tmp_path, image_model, array,
                                                          message):
    npy = tmp_path / "calib.npy"
    np.save(npy, array)
    assert _run(image_model, npy) == [f"error: {npy}: {message}"]
