"""The device side meeting models it did not make: the right answer, or one exact line.

Every model is a real tiny .tflite with hand-set weights (tests/contract_models.py),
so the right class of every image is known; none has an edgepose manifest unless
the test writes one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.errors import ModelError
from edgepose.runtime.classifier import Classifier, NotAClassifier
from edgepose.runtime.input_contract import InputContract, StatedContract
from edgepose.runtime.manifest import Manifest, TensorSpec
from edgepose.runtime.predict import predict_files
from tests import contract_models as cm

UNIT = StatedContract(input_range=(0.0, 1.0))


class Models:
    """Paths of the odd models, built once."""

    def __init__(self, root: Path):
        import keras
        import tensorflow as tf

        self.root = root
        self.images = cm.write_brightness_images(root / "images")
        self.colours = cm.write_colour_images(root / "colours")
        build = root / "models"
        build.mkdir()
        self.float_unit, self.uint8_raw_bytes = cm.unit_tflites(build)
        unit = cm.brightness_model("0..1")
        self.int8_unit = cm.to_tflite(unit, build / "unit_int8.tflite", io="int8",
                                      representative=cm.unit_representative())
        self.uint8_half = cm.to_tflite(unit, build / "half_uint8.tflite", io="uint8",
                                       representative=cm.unit_representative(0.0, 0.5))
        batch4 = [tf.TensorSpec((4, cm.SIZE, cm.SIZE, 3), tf.float32)]
        self.batch4 = cm.to_tflite(cm.brightness_model("0..1", batch_size=4),
                                   build / "batch4.tflite", signature=batch4)
        # A graph that fixes its batch: RESHAPE to [4, 3072] cannot hold one image.
        inputs = keras.Input((cm.SIZE, cm.SIZE, 3), batch_size=4)
        flat = keras.layers.Lambda(lambda x: tf.reshape(x, (4, cm.SIZE * cm.SIZE * 3)))(inputs)
        dense = keras.layers.Dense(3, activation="softmax")(flat)
        self.batch4_fixed = cm.to_tflite(keras.Model(inputs, dense), build / "batch4_fixed.tflite",
                                         signature=batch4)
        self.nchw = cm.to_tflite(cm.brightness_model("0..1", input_shape=(3, cm.SIZE, cm.SIZE),
                                                     channels_first=True), build / "nchw.tflite")
        self.float16 = cm.to_tflite(cm.brightness_model("0..1", dtype="float16"),
                                    build / "float16.tflite")
        dynamic = cm.brightness_model("0..1", batch_size=None, input_shape=(None, None, 3))
        self.dynamic = cm.to_tflite(dynamic, build / "dynamic.tflite", signature=[
            tf.TensorSpec((1, None, None, 3), tf.float32)])
        a = keras.Input((cm.SIZE, cm.SIZE, 3), batch_size=1)
        b = keras.Input((4,), batch_size=1)
        pooled = keras.layers.GlobalAveragePooling2D()(a)
        both = keras.layers.Dense(2, activation="softmax")(keras.layers.Concatenate()([pooled, b]))
        self.two_inputs = cm.to_tflite(keras.Model([a, b], both), build / "two_inputs.tflite",
                                       signature=[[tf.TensorSpec((1, cm.SIZE, cm.SIZE, 3)),
                                                   tf.TensorSpec((1, 4))]])
        x = keras.Input((cm.SIZE, cm.SIZE, 3), batch_size=1)
        pooled = keras.layers.GlobalAveragePooling2D()(x)
        landmarks = keras.Model(x, [keras.layers.Dense(63, name="landmarks")(pooled),
                                    keras.layers.Dense(1, activation="sigmoid",
                                                       name="presence")(pooled)])
        self.landmarks = cm.to_tflite(landmarks, build / "landmarks.tflite")
        feature_map = keras.Model(x, keras.layers.Conv2D(4, 3, strides=4, padding="same")(x))
        self.feature_map = cm.to_tflite(feature_map, build / "feature_map.tflite")
        self.bgr = cm.to_tflite(cm.colour_model("BGR"), build / "bgr.tflite")


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> Models:
    return Models(tmp_path_factory.mktemp("odd"))


def _right(model: Path, images: Path, classes=cm.BRIGHTNESS, **kwargs) -> None:
    files = cm.class_files(images, classes)
    result = predict_files(model, [f for f, _ in files], k=1, **kwargs)
    got = [p.top[0].label for p in result.predictions]
    assert got == [c for _, c in files]


def _labels(model: Path, classes=cm.BRIGHTNESS) -> Path:
    path = model.with_suffix(".txt")
    path.write_text("\n".join(classes) + "\n")
    return path


# -- the pixel contract of a third-party model ------------------------------------------------

def test_a_float_image_model_without_a_stated_range_is_refused_in_one_line(odd):
    result = CliRunner().invoke(main, ["predict", str(odd.float_unit),
                                       str(odd.images / "dark" / "0.png")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {odd.float_unit}: float32 image input [1, 32, 32, 3] with no stated pixel "
        "range (no edgepose manifest, no TFLite metadata): edgepose cannot tell 0..255 from "
        "0..1 or -1..1; state it with --input-range 0,255 | 0,1 | -1,1 (or "
        "--input-mean/--input-std per channel)"]


def test_a_float_image_model_with_input_range_0_1_is_right(odd):
    _right(odd.float_unit, odd.images, labels=_labels(odd.float_unit), stated=UNIT)


def test_input_mean_std_is_the_same_as_the_range(odd):
    stated = StatedContract(mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0))
    _right(odd.float_unit, odd.images, labels=_labels(odd.float_unit), stated=stated)


def test_predict_cli_takes_input_range(odd):
    image = odd.images / "mid" / "1.png"
    result = CliRunner().invoke(main, ["predict", str(odd.float_unit), str(image),
                                       "--labels", str(_labels(odd.float_unit)),
                                       "--input-range", "0,1", "--json"])
    assert result.exit_code == 0, result.output
    assert '"label": "mid"' in result.output
    assert "input 0..1 = pixel / 255, RGB, NHWC, float32 (from --input-range)" \
        in result.output


def test_a_uint8_input_with_scale_1_over_255_takes_raw_bytes(odd):
    clf = Classifier.from_file(odd.uint8_raw_bytes, labels_path=_labels(odd.uint8_raw_bytes))
    assert clf.contract.describe().startswith(
        "input 0..1 = pixel / 255, RGB, NHWC, uint8 (from uint8 input quantization "
        "(scale 0.00392157, zero point 0 -> 0..1))")
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(2, 0).repeat(2, 1)
    clf.set_input(np.repeat(pixels, 3, axis=-1))
    # raw bytes: the tensor holds the pixel values themselves, not re-quantized ones
    assert np.array_equal(clf._input_buffer[0, ..., 0], pixels[..., 0])
    _right(odd.uint8_raw_bytes, odd.images, labels=_labels(odd.uint8_raw_bytes))


def test_an_int8_input_with_scale_1_over_255_is_read_as_0_to_1(odd):
    clf = Classifier.from_file(odd.int8_unit)
    assert clf.contract.value_range == (0.0, 1.0)
    _right(odd.int8_unit, odd.images, labels=_labels(odd.int8_unit))


def test_an_integer_input_of_an_unknown_range_is_refused_then_stated(odd):
    with pytest.raises(ModelError, match=r"uint8 image input \(scale 0\.00196\d*, zero point "
                                         r"0\) stands for 0\.\.0\.5, not a known pixel range; "
                                         r"state it with --input-range") as info:
        Classifier.from_file(odd.uint8_half)
    assert info.value.path == odd.uint8_half
    clf = Classifier.from_file(odd.uint8_half, stated=StatedContract(input_range=(0.0, 0.5)))
    assert clf.contract.source == "--input-range"


def test_a_bgr_model_with_channel_order_bgr_is_right_and_rgb_is_not(odd):
    labels = _labels(odd.bgr, cm.COLOURS)
    _right(odd.bgr, odd.colours, cm.COLOURS, labels=labels,
           stated=StatedContract(input_range=(0.0, 1.0), channel_order="bgr"))
    wrong = predict_files(odd.bgr, [odd.colours / "red" / "0.png"], labels=labels, stated=UNIT)
    assert wrong.predictions[0].top[0].label == "blue"  # what a swap would silently answer


def test_a_manifest_states_the_contract(odd, tmp_path):
    model = tmp_path / "model.tflite"
    model.write_bytes(odd.float_unit.read_bytes())
    spec = TensorSpec([1, 32, 32, 3], "float32")
    Manifest("image", cm.BRIGHTNESS, "fp32", spec, TensorSpec([1, 3], "float32"),
             preprocessing={"height": 32, "width": 32},
             input_contract=InputContract.from_range(0.0, 1.0).to_dict()).save(
        Manifest.path_for(model))
    clf = Classifier.from_file(model)
    assert clf.contract.source == "the manifest model.json"
    _right(model, odd.images)


# -- shapes and types real models have --------------------------------------------------------

def test_a_fixed_batch_of_4_runs_at_batch_1(odd):
    from ai_edge_litert.interpreter import Interpreter

    assert list(Interpreter(str(odd.batch4)).get_input_details()[0]["shape"]) == [4, 32, 32, 3]
    clf = Classifier.from_file(odd.batch4, stated=UNIT)
    assert clf.tensor_shape == (1, 32, 32, 3) and clf.num_classes == 3
    _right(odd.batch4, odd.images, labels=_labels(odd.batch4), stated=UNIT)


def test_a_graph_that_fixes_its_batch_is_one_line_naming_the_shape(odd):
    result = CliRunner().invoke(main, ["predict", str(odd.batch4_fixed),
                                       str(odd.images / "dark" / "0.png"), "--input-range", "0,1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: {odd.batch4_fixed}: input shape [4, 32, 32, 3] cannot be "
                            "resized to [1, 32, 32, 3] (")


def test_an_nchw_model_gets_channels_first(odd):
    clf = Classifier.from_file(odd.nchw, stated=UNIT)
    assert clf.contract.layout == "NCHW" and clf.tensor_shape == (1, 3, 32, 32)
    assert clf.input_shape == (1, 32, 32, 3)  # a prepared sample is still H x W x 3 pixels
    _right(odd.nchw, odd.images, labels=_labels(odd.nchw), stated=UNIT)


def test_an_nchw_colour_sample_lands_in_the_right_planes(odd):
    clf = Classifier.from_file(odd.nchw, stated=UNIT)
    image = np.zeros((32, 32, 3), np.uint8)
    image[..., 0], image[..., 2] = 255, 51
    clf.set_input(image)
    planes = clf._input_buffer[0]
    assert np.allclose(planes[0], 1.0) and np.allclose(planes[1], 0.0) \
        and np.allclose(planes[2], 0.2)


def test_a_float16_input_is_fed_float16(odd):
    clf = Classifier.from_file(odd.float16, stated=UNIT)
    assert clf.input_dtype == np.float16
    _right(odd.float16, odd.images, labels=_labels(odd.float16), stated=UNIT)


def test_a_dynamic_image_size_without_a_stated_size_is_one_line(odd):
    with pytest.raises(ModelError, match=r"input has a dynamic height/width \(shape signature "
                                         r"\[1, -1, -1, 3\]\) and nothing states the image size "
                                         r"\(no manifest preprocessing, no TFLite metadata image "
                                         r"size\)"):
        Classifier.from_file(odd.dynamic, stated=UNIT)


def test_a_dynamic_image_size_is_taken_from_the_manifest(odd, tmp_path):
    model = tmp_path / "dynamic.tflite"
    model.write_bytes(odd.dynamic.read_bytes())
    Manifest("image", cm.BRIGHTNESS, "fp32", TensorSpec([1, -1, -1, 3], "float32"),
             TensorSpec([1, 3], "float32"), preprocessing={"height": 24, "width": 40},
             input_contract=InputContract.from_range(0.0, 1.0).to_dict()).save(
        Manifest.path_for(model))
    clf = Classifier.from_file(model)
    assert clf.tensor_shape == (1, 24, 40, 3)
    _right(model, odd.images)


def test_a_dynamic_image_size_is_taken_from_tflite_metadata(odd, tmp_path):
    from edgepose.converters.metadata import add_metadata

    model = tmp_path / "dynamic_meta.tflite"
    model.write_bytes(add_metadata(odd.dynamic.read_bytes(), "dynamic", cm.BRIGHTNESS,
                                   InputContract.from_range(0.0, 1.0), (20, 28)))
    clf = Classifier.from_file(model)
    assert clf.tensor_shape == (1, 20, 28, 3) and clf.labels == cm.BRIGHTNESS
    assert clf.contract.source == "TFLite metadata NormalizationOptions"
    _right(model, odd.images)


def test_two_inputs_are_not_a_classifier(odd):
    with pytest.raises(NotAClassifier) as info:
        Classifier.from_file(odd.two_inputs)
    assert info.value.message == ("model has 2 inputs ([1, 32, 32, 3] float32, [1, 4] float32); "
                                  "the classifier feeds one image or vector")


def test_landmark_outputs_are_not_a_classifier(odd):
    result = CliRunner().invoke(main, ["predict", str(odd.landmarks),
                                       str(odd.images / "dark" / "0.png"), "--input-range", "0,1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error in (
        f"error: {odd.landmarks}: model has 2 outputs ([1, 63] float32, [1, 1] float32); a "
        "classifier has one output of class scores",
        f"error: {odd.landmarks}: model has 2 outputs ([1, 1] float32, [1, 63] float32); a "
        "classifier has one output of class scores")


def test_a_feature_map_output_is_not_a_classifier(odd):
    with pytest.raises(NotAClassifier) as info:
        Classifier.from_file(odd.feature_map, stated=UNIT)
    assert info.value.message == "output shape [1, 8, 8, 4] is not a vector of class scores"


def test_timing_only_loads_what_the_classifier_refuses(odd):
    clf = Classifier.from_file(odd.landmarks, strict=False)
    assert clf.contract.source == "nothing: assumed 0..255, for timing only"
    clf.set_input(np.zeros((32, 32, 3), np.uint8))
    clf.invoke()


# -- bench ------------------------------------------------------------------------------------

def test_bench_with_data_uses_the_stated_contract_and_prints_it(odd, tmp_path):
    import io
    import zipfile

    packed = io.BytesIO()  # labels packed as the TFLite Metadata writer packs them
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("labels.txt", "\n".join(cm.BRIGHTNESS) + "\n")
    model = tmp_path / "unit.tflite"
    model.write_bytes(odd.float_unit.read_bytes() + packed.getvalue())
    args = ["bench", str(model), "--data", str(odd.images), "--runs", "2", "--warmup", "0",
            "--reference", "none"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert "no stated pixel range" in refused.stderr
    result = CliRunner().invoke(main, [*args, "--input-range", "0,1", "--print-json"])
    assert result.exit_code == 0, result.output
    import json

    [row] = json.loads(result.stdout)["result"]["rows"]
    assert row["accuracy"] == 1.0
    table = CliRunner().invoke(main, [*args, "--input-range", "0,1"])
    assert f"input contract {model}: input 0..1 = pixel / 255, RGB, NHWC, float32 " \
           "(from --input-range)" in " ".join(table.stdout.split())
