"""The input contract through `convert`: stated or read, applied to Keras, calibration,
drift and the device, written in the manifest; calibration data checked against it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.converters import convert_run
from edgepose.errors import ConfigError, ConversionError
from edgepose.runtime.input_contract import StatedContract
from edgepose.runtime.manifest import Manifest
from edgepose.runtime.predict import predict_files
from tests import contract_models as cm

UNIT = StatedContract(input_range=(0.0, 1.0))


@pytest.fixture(scope="module")
def brightness(tmp_path_factory) -> Path:
    return cm.write_brightness_images(tmp_path_factory.mktemp("brightness"))


def _save(model, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("\n".join(
        cm.BRIGHTNESS if model.outputs[0].shape[-1] == 3 else cm.COLOURS) + "\n")
    model.save(folder / "model.keras")
    return folder / "model.keras"


def _answers(model_path: Path, images: Path, classes: list[str]) -> list[tuple[str, str]]:
    files = cm.class_files(images, classes)
    result = predict_files(model_path, [f for f, _ in files], k=1)
    return [(p.top[0].label, truth) for p, (_, truth) in zip(result.predictions, files,
                                                              strict=True)]


@pytest.fixture(scope="module")
def unit_converted(tmp_path_factory, brightness) -> Path:
    """The issue-11 field case: a 0..1 model (no Rescaling) converted with --input-range 0,1."""
    path = _save(cm.brightness_model("0..1"), tmp_path_factory.mktemp("unit"))
    convert_run(path, ["fp32", "int8"], calib_data=brightness, stated=UNIT)
    return path.parent


def test_a_bare_keras_model_without_rescaling_must_state_its_pixel_range(tmp_path, brightness):
    path = _save(cm.brightness_model("0..1"), tmp_path)
    result = CliRunner().invoke(main, ["convert", str(path), "--int8",
                                       "--calib-data", str(brightness)])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {path}: not an edgepose run and the first layer is Conv2D, not a Rescaling of "
        "raw pixels: "
        "edgepose cannot tell which pixel range the model was trained on; state it with "
        "--input-range 0,255 | 0,1 | -1,1 (or --input-mean/--input-std per channel)"]
    assert not (tmp_path / "model_int8.tflite").exists() and "Traceback" not in result.output


def test_a_0_to_1_model_stated_as_such_is_right_on_every_image_in_int8(unit_converted,
                                                                        brightness):
    for mode in ("fp32", "int8"):
        answers = _answers(unit_converted / f"model_{mode}.tflite", brightness, cm.BRIGHTNESS)
        assert [a for a, _ in answers] == [t for _, t in answers], mode


def test_the_manifest_carries_the_stated_contract(unit_converted):
    fp32 = Manifest.load(unit_converted / "model_fp32.json").input_contract
    int8 = Manifest.load(unit_converted / "model_int8.json").input_contract
    assert fp32 == {"kind": "pixels", "mean": [0.0], "std": [255.0], "channel_order": "RGB",
                    "layout": "NHWC", "dtype": "float32", "value_range": [0.0, 1.0]}
    assert int8 == dict(fp32, dtype="int8")


def test_the_report_names_the_contract_used(unit_converted):
    import json

    report = json.loads((unit_converted / "conversion_report.json").read_text())
    assert report["settings"]["input_contract"] == (
        "input 0..1 = pixel / 255, RGB, NHWC, float32 (from --input-range)")


def test_a_rescaling_first_layer_is_read_as_raw_pixels(tmp_path, brightness):
    path = _save(cm.brightness_model("rescaling"), tmp_path)
    report = convert_run(path, ["int8"], calib_data=brightness)
    assert report.settings["input_contract"] == (
        "input 0..255 = pixel, RGB, NHWC, float32 (from the model's first layer "
        "'rescale' (Rescaling of raw 0..255 pixels))")
    answers = _answers(tmp_path / "model_int8.tflite", brightness, cm.BRIGHTNESS)
    assert [a for a, _ in answers] == [t for _, t in answers]


def test_a_minus_1_to_1_model_stated_as_such_is_right_in_int8(tmp_path, brightness):
    path = _save(cm.brightness_model("-1..1"), tmp_path)
    convert_run(path, ["int8"], calib_data=brightness,
                stated=StatedContract(input_range=(-1.0, 1.0)))
    answers = _answers(tmp_path / "model_int8.tflite", brightness, cm.BRIGHTNESS)
    assert [a for a, _ in answers] == [t for _, t in answers]


def test_a_bgr_model_gets_its_channels_swapped(tmp_path):
    images = cm.write_colour_images(tmp_path / "colours")
    path = _save(cm.colour_model("BGR"), tmp_path / "bgr")
    convert_run(path, ["int8"], calib_data=images,
                stated=StatedContract(input_range=(0.0, 1.0), channel_order="bgr"))
    answers = _answers(tmp_path / "bgr" / "model_int8.tflite", images, cm.COLOURS)
    assert [a for a, _ in answers] == [t for _, t in answers]
    assert Manifest.load(tmp_path / "bgr" / "model_int8.json").input_contract[
        "channel_order"] == "BGR"


@pytest.mark.parametrize("case, values, message", [
    ("pixels for a 0..1 model", lambda x: x * 255.0, r"spans 0\.\.255 but the model's input "
     r"contract is 0\.\.1 \(input 0\.\.1 = pixel / 255, RGB, NHWC, float32 \(from "
     r"--input-range\)\)"),
    ("one NaN", lambda x: np.where(np.arange(x.size).reshape(x.shape) == 77, np.nan, x),
     r"calibration data has 1 NaN/inf values \(first in sample 0\)"),
    ("an inf in sample 2", lambda x: np.where(
        np.arange(x.size).reshape(x.shape) == 2 * 32 * 32 * 3 + 5, np.inf, x),
     r"1 NaN/inf values \(first in sample 2\)"),
    ("all one value", lambda x: np.full_like(x, 0.5), r"spans 0\.5\.\.0\.5 but"),
])
def test_calibration_npy_far_from_the_contract_is_refused_naming_the_file(
        tmp_path, case, values, message):
    path = _save(cm.brightness_model("0..1"), tmp_path / "m")
    x = np.random.default_rng(0).random((6, 32, 32, 3)).astype(np.float32)
    x[0, 0, 0] = (0.0, 0.0, 0.0)
    x[0, 0, 1] = (1.0, 1.0, 1.0)
    npy = tmp_path / "calib.npy"
    np.save(npy, values(x).astype(np.float32))
    with pytest.raises(ConversionError, match=message) as info:
        convert_run(path, ["int8"], calib_data=npy, stated=UNIT)
    assert info.value.path == npy and "\n" not in str(info.value)


def test_a_0_to_1_npy_for_a_raw_pixel_model_is_refused(tmp_path):
    path = _save(cm.brightness_model("rescaling"), tmp_path / "m")
    npy = tmp_path / "unit.npy"
    np.save(npy, np.random.default_rng(0).random((4, 32, 32, 3)).astype(np.float32))
    with pytest.raises(ConversionError, match=r"spans 0\.0\d+\.\.1 but the model's input "
                                              r"contract is 0\.\.255") as info:
        convert_run(path, ["int8"], calib_data=npy)
    assert info.value.path == npy


def test_a_0_to_1_npy_for_a_0_to_1_model_is_accepted(tmp_path, brightness):
    path = _save(cm.brightness_model("0..1"), tmp_path / "m")
    from PIL import Image

    x = np.stack([np.asarray(Image.open(f), np.float32) / 255.0
                  for f, _ in cm.class_files(brightness, cm.BRIGHTNESS)])
    np.save(tmp_path / "unit.npy", x)
    report = convert_run(path, ["int8"], calib_data=tmp_path / "unit.npy", stated=UNIT)
    assert report.calibration["samples"] == len(x)
    answers = _answers(tmp_path / "m" / "model_int8.tflite", brightness, cm.BRIGHTNESS)
    assert [a for a, _ in answers] == [t for _, t in answers]


def test_contract_flags_on_a_keypoint_model_are_a_config_error(tmp_path):
    import keras

    inputs = keras.Input((34,), batch_size=1)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    model.save(tmp_path / "kp.keras")
    with pytest.raises(ConfigError, match="apply to image models; this is a keypoint model"):
        convert_run(tmp_path / "kp.keras", ["fp32"], stated=UNIT)


def test_input_range_and_mean_std_together_are_a_config_error():
    with pytest.raises(ConfigError, match="not both"):
        StatedContract(input_range=(0.0, 1.0), mean=(0.0,)).apply()


def test_a_converted_model_carries_labels_and_contract_as_tflite_metadata(unit_converted,
                                                                          brightness, tmp_path):
    from edgepose.runtime.classifier import Classifier
    from edgepose.runtime.tflite_file import input_metadata, read_model_info

    alone = tmp_path / "model_int8.tflite"  # copied without its manifest
    alone.write_bytes((unit_converted / "model_int8.tflite").read_bytes())
    info = read_model_info(alone)
    assert "TFLITE_METADATA" in info.metadata_names and info.associated_files == ["labels.txt"]
    meta = input_metadata(info)
    assert (meta.mean, meta.std, meta.color_space, meta.size) == (
        (0.0, 0.0, 0.0), (255.0, 255.0, 255.0), "RGB", (32, 32))
    clf = Classifier.from_file(alone)
    assert clf.labels == cm.BRIGHTNESS and clf.labels_source == "labels embedded in the model"
    assert clf.contract.source == "TFLite metadata NormalizationOptions"
    answers = _answers(alone, brightness, cm.BRIGHTNESS)
    assert [a for a, _ in answers] == [t for _, t in answers]


def test_a_bgr_contract_writes_no_rgb_normalization_into_the_metadata():
    from edgepose.converters.metadata import metadata_flatbuffer
    from edgepose.runtime.input_contract import InputContract
    from edgepose.runtime.tflite_file import ModelFileInfo, input_metadata

    bgr = InputContract.from_range(0.0, 1.0, channel_order="BGR")
    info = ModelFileInfo(Path("m.tflite"), 0, "", None, None,
                         tflite_metadata=metadata_flatbuffer("m", ["a"], bgr, (8, 8)))
    assert input_metadata(info) == type(input_metadata(info))(None, None, None, None)


def _rescaling_first(scale: float, offset: float, augment: bool = False):
    import keras

    inputs = keras.Input((8, 8, 3))
    x = inputs
    if augment:  # the Keras tutorial shape: augmentation, then Rescaling
        x = keras.layers.RandomFlip("horizontal")(x)
        x = keras.layers.RandomRotation(0.1)(x)
    x = keras.layers.Rescaling(scale, offset=offset)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


@pytest.mark.parametrize("scale, offset, augment", [
    (1 / 255, 0.0, False), (1 / 127.5, -1.0, False), (1 / 255, 0.0, True)])
def test_a_rescaling_of_raw_pixels_first_means_raw_pixels(tmp_path, scale, offset, augment):
    from edgepose.converters.source import resolve_source, source_contract

    path = _save(_rescaling_first(scale, offset, augment), tmp_path)
    src = resolve_source(path)
    src.config = {"task": "image"}
    contract = source_contract(src, __import__("keras").models.load_model(path))
    assert contract.value_range == (0.0, 255.0)


def test_a_rescaling_that_expects_0_to_1_input_is_not_read_as_raw_pixels(tmp_path):
    from edgepose.converters.source import resolve_source, source_contract

    path = _save(_rescaling_first(2.0, -1.0), tmp_path)  # 0..1 -> -1..1
    src = resolve_source(path)
    src.config = {"task": "image"}
    with pytest.raises(ConfigError, match=r"first layer is Rescaling\(scale=2\.0, offset=-1\.0\), "
                                          r"which does not map 0\.\.255 onto 0\.\.1 or -1\.\.1"):
        source_contract(src, __import__("keras").models.load_model(path))
