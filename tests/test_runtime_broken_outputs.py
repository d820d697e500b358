"""Outputs a classifier cannot rank honestly: one sigmoid score, NaN/inf. Refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.bench.harness import run_bench
from edgepose.cli import main
from edgepose.errors import ModelError
from edgepose.runtime.classifier import Classifier, NotAClassifier
from edgepose.runtime.input_contract import StatedContract
from tests import tflite_models

UNIT = StatedContract(input_range=(0.0, 1.0))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A one-sigmoid-score model, and one whose softmax is NaN for every real image."""
    import keras

    folder = tmp_path_factory.mktemp("broken_outputs")
    inputs = keras.Input((8, 8, 3), batch_size=1)
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    sigmoid = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled))
    # log of a negative number is NaN: every 0..1 pixel mean minus 1000 is negative.
    nan = keras.layers.Lambda(lambda x: keras.ops.log(x - 1000.0))(
        keras.layers.Dense(3)(pooled))
    nan_model = keras.Model(inputs, keras.layers.Softmax()(nan))
    return (tflite_models.convert_keras(sigmoid, folder / "sigmoid.tflite", folder, "fp32"),
            tflite_models.convert_keras(nan_model, folder / "nan.tflite", folder, "fp32"))


def test_a_single_sigmoid_score_is_not_ranked_as_a_class_vector(models):
    with pytest.raises(NotAClassifier) as info:
        Classifier.from_file(models[0], stated=UNIT)
    assert info.value.message == (
        "output shape [1, 1] holds one score (a sigmoid?), not a vector of class scores; "
        "export two outputs (softmax)")


def test_predict_refuses_the_sigmoid_model_in_one_line(models, tmp_path):
    from PIL import Image

    image = tmp_path / "x.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(image)
    result = CliRunner().invoke(main, ["predict", str(models[0]), str(image),
                                       "--input-range", "0,1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip() == (
        f"error: {models[0]}: output shape [1, 1] holds one score (a sigmoid?), not a vector "
        "of class scores; export two outputs (softmax)")


def test_bench_times_the_sigmoid_model_without_pretending_to_classify(models):
    result = run_bench([models[0]], warmup=0, runs=2)
    assert result.rows[0].kind == "any model" and result.rows[0].accuracy is None


def test_nan_outputs_are_an_error_not_an_answer(models):
    classifier = Classifier.from_file(models[1], stated=UNIT)
    with pytest.raises(ModelError) as info:
        classifier.predict(np.full((8, 8, 3), 128, np.uint8))
    assert info.value.message == ("model output holds NaN/inf values: the model (or its "
                                  "conversion) is broken for this input")
