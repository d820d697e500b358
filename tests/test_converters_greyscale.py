"""A 1-channel (greyscale) Keras image model through `convert`, end to end.

Calibration decodes every image as Pillow's ``convert("L")`` luma (ITU-R 601-2), one
channel; the manifest and the TFLite Metadata state one mean/std and the GRAYSCALE
colour space (metadata_schema.fbs ``ColorSpaceType``); the device runtime reads
either back and classifies every image right. The model (tests/test_runtime_greyscale.py
``grey_model``) has hand-set weights: dark / mid / bright by the mean grey level, so
the right answer of every image is known.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgepose.cli import main
from edgepose.converters.calibration import from_folder
from edgepose.errors import ConfigError
from edgepose.runtime.classifier import Classifier
from edgepose.runtime.manifest import Manifest
from edgepose.runtime.predict import predict_files
from edgepose.runtime.tflite_file import input_metadata, read_model_info
from tests import contract_models as cm
from tests.test_runtime_greyscale import grey_model

GREY = {"task": "image", "preprocessing": {"height": cm.SIZE, "width": cm.SIZE,
                                           "channels": 1}}
# Luma 0.299 R + 0.587 G + 0.114 B of each colour, and the class its level falls in.
COLOURED = {"dark": (90, 10, 30), "mid": (40, 200, 120), "bright": (255, 230, 140)}


def _save(model, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("\n".join(cm.BRIGHTNESS) + "\n")
    model.save(folder / "model.keras")
    return folder / "model.keras"


def _rescaling_grey_model():
    """``grey_model`` taking raw 0..255 with a Rescaling(1/255) first (no flag needed)."""
    import keras

    unit = grey_model()
    inputs = keras.Input((cm.SIZE, cm.SIZE, 1), batch_size=1, name="image")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    return keras.Model(inputs, unit(x))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Grey brightness PNGs plus colour ones whose luma (not any one channel) decides."""
    root = cm.write_brightness_images(tmp_path_factory.mktemp("grey_images"), per_class=3)
    for name, rgb in COLOURED.items():
        Image.fromarray(np.full((cm.SIZE, cm.SIZE, 3), rgb, np.uint8), "RGB").save(
            root / name / "colour.png")
    return root


def _right(model: Path, images: Path) -> tuple[list[str], list[str]]:
    files = cm.class_files(images, cm.BRIGHTNESS)
    result = predict_files(model, [f for f, _ in files], k=1)
    return [p.top[0].label for p in result.predictions], [t for _, t in files]


@pytest.fixture(scope="module")
def converted(tmp_path_factory, images) -> Path:
    """fp32 and int8 (calibrated on the image folder) of the 0..1 grey model, by the CLI."""
    path = _save(grey_model(), tmp_path_factory.mktemp("grey"))
    result = CliRunner().invoke(main, ["convert", str(path), "--fp32", "--int8",
                                       "--input-range", "0,1", "--calib-data", str(images),
                                       "--json"])
    assert result.exit_code == 0, result.output
    return path.parent


def test_calibration_decodes_every_image_as_one_luma_channel(images):
    calibration = from_folder(images, GREY, n=100)
    assert calibration.x.shape == (len(calibration.files), cm.SIZE, cm.SIZE, 1)
    for x, path in zip(calibration.x, calibration.files, strict=True):
        luma = np.asarray(Image.open(path).convert("L"))
        assert np.array_equal(x[..., 0], luma), path
    colour = calibration.files.index(images / "mid" / "colour.png")
    assert int(calibration.x[colour, 0, 0, 0]) == round(0.299 * 40 + 0.587 * 200 + 0.114 * 120)


@pytest.mark.parametrize("mode", ["fp32", "int8"])
def test_every_image_is_right_on_the_device(converted, images, mode):
    answers, truth = _right(converted / f"model_{mode}.tflite", images)
    assert answers == truth


def test_the_manifest_states_one_channel_and_one_mean_std(converted):
    manifest = Manifest.load(converted / "model_int8.json")
    assert manifest.input_contract["channels"] == 1
    assert (manifest.input_contract["mean"], manifest.input_contract["std"]) == ([0.0], [255.0])
    assert manifest.preprocessing["channels"] == 1
    report = json.loads((converted / "conversion_report.json").read_text())
    assert report["settings"]["input_contract"] == (
        "input 0..1 = pixel / 255, grey, NHWC, float32 (from --input-range)")


@pytest.mark.parametrize("mode", ["fp32", "int8"])
def test_the_metadata_states_grayscale_and_one_mean_std(converted, mode):
    meta = input_metadata(read_model_info(converted / f"model_{mode}.tflite"))
    assert (meta.mean, meta.std, meta.color_space, meta.size) == (
        (0.0,), (255.0,), "GRAYSCALE", (cm.SIZE, cm.SIZE))


def test_the_model_alone_is_read_back_from_its_metadata(converted, images, tmp_path):
    alone = tmp_path / "grey_int8.tflite"  # without its manifest
    alone.write_bytes((converted / "model_int8.tflite").read_bytes())
    clf = Classifier.from_file(alone)
    assert (clf.contract.channels, clf.contract.value_range) == (1, (0.0, 1.0))
    assert clf.contract.source == "TFLite metadata NormalizationOptions"
    answers, truth = _right(alone, images)
    assert answers == truth


def test_a_grey_model_with_rescaling_first_needs_no_flag(tmp_path, images):
    path = _save(_rescaling_grey_model(), tmp_path)
    result = CliRunner().invoke(main, ["convert", str(path), "--int8", "--calib-data",
                                       str(images), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["input_contract"] == (
        "input 0..255 = pixel, grey, NHWC, float32 (from the model's first layer "
        "'rescale' (Rescaling of raw 0..255 pixels))")
    meta = input_metadata(read_model_info(tmp_path / "model_int8.tflite"))
    assert (meta.mean, meta.std, meta.color_space) == ((0.0,), (1.0,), "GRAYSCALE")
    answers, truth = _right(tmp_path / "model_int8.tflite", images)
    assert answers == truth


@pytest.mark.parametrize("flags, message", [
    (["--input-range", "0,1", "--channel-order", "bgr"],
     "a greyscale (1-channel) input has no channel order; drop --channel-order bgr"),
    (["--input-mean", "0,10,20", "--input-std", "255"],
     "a greyscale (1-channel) input takes one mean and one std, got mean [0.0, 10.0, 20.0], "
     "std [255.0]"),
])
def test_colour_only_flags_on_a_grey_model_are_one_line_errors(tmp_path, flags, message):
    path = _save(grey_model(), tmp_path)
    result = CliRunner().invoke(main, ["convert", str(path), "--fp32", *flags])
    assert result.exit_code == ConfigError.exit_code
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {message}"]
    assert not (tmp_path / "model_fp32.tflite").exists()


def test_three_equal_means_on_a_grey_model_are_one(tmp_path, images):
    path = _save(grey_model(), tmp_path)
    result = CliRunner().invoke(main, ["convert", str(path), "--fp32", "--input-mean", "0,0,0",
                                       "--input-std", "255,255,255", "--json"])
    assert result.exit_code == 0, result.output
    assert Manifest.load(tmp_path / "model_fp32.json").input_contract["mean"] == [0.0]
    answers, truth = _right(tmp_path / "model_fp32.tflite", images)
    assert answers == truth


def _channels_first(channels: int):
    """A channels-first (C x H x W) image model: Permute to channels-last, then pooling."""
    import keras

    inputs = keras.Input((channels, cm.SIZE, cm.SIZE), batch_size=1, name="image")
    x = keras.layers.Permute((2, 3, 1))(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def _refused_by_convert(path) -> list[str]:
    """``edgepose convert PATH --fp32`` on a model it must refuse: its ``error:`` lines,
    after checking the exit code and that no model was written beside it."""
    result = CliRunner().invoke(main, ["convert", str(path), "--fp32"])
    assert result.exit_code == ConfigError.exit_code
    assert not (path.parent / "model_fp32.tflite").exists()
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("channels", [1, 3])
def test_a_channels_first_image_model_is_refused_not_read_as_keypoints(tmp_path, channels):
    path = _save(_channels_first(channels), tmp_path)
    assert _refused_by_convert(path) == [
        f"error: {path}: the model's input is {channels} x 32 x 32 (channels first, NCHW): "
        "edgepose converts image models laid out H x W x C (channels last); rebuild it "
        "channels-last (keras.layers.Permute or data_format='channels_last') and convert that"]


@pytest.mark.parametrize("shape, task, channels", [
    ((32, 32, 1), "image", 1), ((24, 40, 3), "image", None), ((34,), "keypoints", None),
    ((17, 2), "keypoints", None)])
def test_a_bare_model_s_input_decides_task_and_channels(shape, task, channels):
    from edgepose.converters.source import infer_config

    config = infer_config({}, shape)
    assert config["task"] == task
    if task == "image":
        assert config["preprocessing"]["height"] == shape[0]
        assert config["preprocessing"].get("channels") == channels


@pytest.mark.parametrize("channels", [2, 4])
def test_an_image_input_with_alpha_is_refused_not_read_as_keypoints(tmp_path, channels):
    import keras

    inputs = keras.Input((cm.SIZE, cm.SIZE, channels), batch_size=1)
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    path = _save(keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)), tmp_path)
    assert _refused_by_convert(path) == [
        f"error: {path}: the model's input is 32 x 32 x {channels}: an image with {channels} "
        "channels (alpha?); edgepose feeds images as RGB (3 channels) or greyscale (1), so it "
        "cannot convert this as an image model nor as keypoint features"]


@pytest.mark.parametrize("shape", [(28, 28), (32, 24), (10, 16)])
def test_a_two_dimensional_input_wider_than_a_keypoint_is_refused(shape):
    from edgepose.converters.source import infer_config

    with pytest.raises(ConfigError) as info:
        infer_config({}, shape, "m.keras")
    assert info.value.message == (
        f"the model's input is {shape[0]} x {shape[1]}: an image without a channel axis, or a "
        "feature matrix? edgepose converts images laid out H x W x C and keypoints as K x 2..4 "
        "(x, y[, z][, visibility]) or one flat vector; for a greyscale image put "
        f"keras.layers.Reshape(({shape[0]}, {shape[1]}, 1)) in front, then convert that")


@pytest.mark.parametrize("shape", [(33, 4), (33, 3), (21, 2)])
def test_keypoints_as_rows_of_two_to_four_values_stay_keypoints(shape):
    from edgepose.converters.source import infer_config

    assert infer_config({}, shape)["task"] == "keypoints"


def test_a_bare_28_by_28_model_is_refused_by_convert_naming_the_file(tmp_path):
    import keras

    inputs = keras.Input((28, 28), batch_size=1)
    x = keras.layers.Flatten()(inputs)
    path = _save(keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)), tmp_path)
    assert _refused_by_convert(path) == [
        f"error: {path}: the model's input is 28 x 28: an image without a channel axis, or a "
        "feature matrix? edgepose converts images laid out H x W x C and keypoints as K x 2..4 "
        "(x, y[, z][, visibility]) or one flat vector; for a greyscale image put "
        "keras.layers.Reshape((28, 28, 1)) in front, then convert that"]
