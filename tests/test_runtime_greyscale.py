"""Greyscale models (input [1, H, W, 1] or [1, 1, H, W]) run on the device, right.

Each model is a real tiny 1-channel Keras model with hand-set weights, converted to
TFLite here: dark / mid / bright by the mean grey level ``m`` in 0..1 (boundaries
0.25 and 0.75), so the right answer of every image is known. A colour picture
becomes grey by Pillow's ``convert("L")`` (ITU-R 601-2 luma), not by taking a channel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgepose.bench.harness import run_bench
from edgepose.cli import main
from edgepose.errors import ModelError
from edgepose.runtime.classifier import Classifier
from edgepose.runtime.input_contract import InputContract, stated_contract
from edgepose.runtime.predict import predict_files
from tests import contract_models as cm

UNIT = stated_contract("0,1")


def grey_model(channels_first: bool = False):
    """Mean grey level in 0..1 -> dark / mid / bright (see module docstring)."""
    import keras

    shape = (1, cm.SIZE, cm.SIZE) if channels_first else (cm.SIZE, cm.SIZE, 1)
    inputs = keras.Input(shape, batch_size=1, name="image")
    x = keras.layers.Permute((2, 3, 1))(inputs) if channels_first else inputs
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(3, activation="softmax", name="scores")
    y = dense(x)
    dense.set_weights([np.array([[0.0, 12.0, 24.0]], np.float32),
                       np.array([0.0, -3.0, -12.0], np.float32)])
    return keras.Model(inputs, y)


def grey_representative():
    def generate():
        for i in range(16):
            img = np.full((1, cm.SIZE, cm.SIZE, 1), i / 15, np.float32)
            img[0, 0, 0], img[0, 0, 1] = 0.0, 1.0
            yield [img]
    return generate


class Grey:
    def __init__(self, root: Path):
        from edgepose.converters.metadata import add_metadata

        self.rgb_images = cm.write_brightness_images(root / "rgb", per_class=2)
        self.l_images = root / "l"
        for path, name in cm.class_files(self.rgb_images, cm.BRIGHTNESS):
            (self.l_images / name).mkdir(parents=True, exist_ok=True)
            Image.open(path).convert("L").save(self.l_images / name / path.name)
        build = root / "models"
        build.mkdir()
        model = grey_model()
        self.float = cm.to_tflite(model, build / "grey_fp32.tflite")
        self.uint8 = cm.to_tflite(model, build / "grey_uint8.tflite", io="uint8",
                                  representative=grey_representative())
        self.nchw = cm.to_tflite(grey_model(channels_first=True), build / "grey_nchw.tflite")
        self.metadata = build / "grey_metadata.tflite"
        self.metadata.write_bytes(add_metadata(self.float.read_bytes(), "grey", cm.BRIGHTNESS,
                                               InputContract.from_range(0.0, 1.0),
                                               (cm.SIZE, cm.SIZE)))
        self.labels = build / "labels.txt"
        self.labels.write_text("\n".join(cm.BRIGHTNESS) + "\n")


@pytest.fixture(scope="module")
def grey(tmp_path_factory) -> Grey:
    return Grey(tmp_path_factory.mktemp("grey"))


def _right(grey: Grey, model: Path, images: Path, **kwargs) -> None:
    files = cm.class_files(images, cm.BRIGHTNESS)
    result = predict_files(model, [f for f, _ in files], k=1, labels=grey.labels, **kwargs)
    assert not result.failed
    assert [p.top[0].label for p in result.predictions] == [c for _, c in files]


@pytest.mark.parametrize("images", ["rgb_images", "l_images"])
def test_a_float_greyscale_model_is_right_on_rgb_and_grey_files(grey, images):
    _right(grey, grey.float, getattr(grey, images), stated=UNIT)


def test_the_contract_of_a_greyscale_model_says_grey(grey):
    clf = Classifier.from_file(grey.float, stated=UNIT)
    assert clf.contract.describe() == ("input 0..1 = pixel / 255, grey, NHWC, float32 "
                                       "(from --input-range)")
    assert clf.sample_shape == (cm.SIZE, cm.SIZE, 1)


def test_a_uint8_greyscale_model_reads_its_range_from_the_quantization(grey):
    clf = Classifier.from_file(grey.uint8)
    assert clf.contract.value_range == (0.0, 1.0) and clf.contract.channels == 1
    _right(grey, grey.uint8, grey.l_images)


def test_an_nchw_greyscale_model_is_right(grey):
    clf = Classifier.from_file(grey.nchw, stated=UNIT)
    assert clf.tensor_shape == (1, 1, cm.SIZE, cm.SIZE) and clf.contract.layout == "NCHW"
    _right(grey, grey.nchw, grey.rgb_images, stated=UNIT)


@pytest.mark.parametrize("colour, label", [((255, 0, 0), "mid"), ((0, 255, 0), "mid"),
                                           ((0, 0, 255), "dark"), ((255, 255, 255), "bright")])
def test_a_colour_picture_becomes_its_luma(grey, tmp_path, colour, label):
    # luma 0.299 R + 0.587 G + 0.114 B: red 76 (m 0.30), green 150 (0.59), blue 29 (0.11)
    path = tmp_path / "colour.png"
    Image.new("RGB", (40, 24), colour).save(path)
    result = predict_files(grey.float, [path], k=1, labels=grey.labels, stated=UNIT)
    assert result.predictions[0].top[0].label == label


def test_a_grey_array_of_another_size_is_resized(grey):
    clf = Classifier.from_file(grey.float, labels_path=grey.labels, stated=UNIT)
    array = np.full((50, 70, 1), 230, np.uint8)
    assert clf.classify(array, k=1)[0].label == "bright"


def test_three_different_means_for_a_greyscale_model_is_one_line(grey):
    result = CliRunner().invoke(main, ["predict", str(grey.float),
                                       str(grey.l_images / "dark" / "0.png"),
                                       "--input-mean", "0,10,20", "--input-std", "255"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {grey.float}: a greyscale (1-channel) input takes one mean and one std, got "
        "mean [0.0, 10.0, 20.0], std [255.0] (input [1, 32, 32, 1] float32)"]


def test_three_equal_means_for_a_greyscale_model_are_one(grey):
    stated = stated_contract(None, "0,0,0", "255,255,255")
    clf = Classifier.from_file(grey.float, stated=stated)
    assert (clf.contract.mean, clf.contract.std) == ((0.0,), (255.0,))
    _right(grey, grey.float, grey.l_images, stated=stated)


def test_bgr_for_a_greyscale_model_is_refused(grey):
    with pytest.raises(ModelError) as info:
        Classifier.from_file(grey.float, stated=stated_contract("0,1", channel_order="bgr"))
    assert info.value.message == ("a greyscale (1-channel) input has no channel order; drop "
                                  "--channel-order bgr (input [1, 32, 32, 1] float32)")


def test_bench_scores_a_greyscale_model(grey):
    result = run_bench([grey.metadata], data=grey.rgb_images, runs=3, warmup=0)
    [row] = result.rows
    assert row.kind == "classifier" and row.accuracy == 1.0


@pytest.mark.parametrize("shape", [(32, 32), (32, 32, 1), (20, 30), (32, 32, 3)])
def test_grey_and_rgb_arrays_of_any_size_are_accepted(grey, shape):
    clf = Classifier.from_file(grey.float, labels_path=grey.labels, stated=UNIT)
    assert clf.classify(np.full(shape, 10, np.uint8), k=1)[0].label == "dark"
