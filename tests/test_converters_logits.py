"""A model that outputs logits (trained with ``from_logits=True``) is recorded as such.

Found by a new user: such a model converted with exit 0, its manifest said
``probabilities``, and ``predict`` showed raw logits (8.5, -0.45) as scores. The
converter reads the output kind from the Keras model's last layer; the runtime then
applies softmax before any score is shown, and drift compares probabilities with
probabilities. The brightness model (tests/contract_models.py) has a known right
answer per image; ``activation="linear"`` makes it a logits model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.converters import ConvertOptions, run_conversion
from edgepose.converters.model_outputs import keras_output_kind, keras_probabilities
from edgepose.runtime.classifier import Classifier, softmax
from edgepose.runtime.manifest import Manifest
from tests import contract_models as cm


def _save(model, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("\n".join(cm.BRIGHTNESS) + "\n")
    model.save(folder / "model.keras")
    return folder / "model.keras"


@pytest.fixture(scope="module")
def logits_run(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("logits")
    calib = cm.write_brightness_images(root / "calib", per_class=6, seed=0)
    held = cm.write_brightness_images(root / "eval", per_class=4, seed=1)
    path = _save(cm.brightness_model("rescaling", activation="linear"), root / "model")
    run_conversion(path, ["fp32", "int8"], ConvertOptions(calib_data=calib, eval_data=held))
    return path.parent, held


def _keras(kind: str):
    import keras

    inputs = keras.Input((4,))
    if kind == "dense softmax":
        return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    x = keras.layers.Dense(3)(inputs)
    layer = {"Softmax layer": keras.layers.Softmax(),
             "Activation softmax": keras.layers.Activation("softmax"),
             "Activation sigmoid": keras.layers.Activation("sigmoid"),
             "linear": None}[kind]
    return keras.Model(inputs, layer(x) if layer is not None else x)


@pytest.mark.parametrize("kind, expected", [
    ("dense softmax", "probabilities"), ("Softmax layer", "probabilities"),
    ("Activation softmax", "probabilities"), ("Activation sigmoid", "probabilities"),
    ("linear", "logits")])
def test_the_output_kind_is_read_from_the_last_layer(kind, expected):
    assert keras_output_kind(_keras(kind)) == expected


def test_the_keras_reference_of_a_logits_model_is_its_softmax():
    model = _keras("linear")
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    raw = model.predict(x, verbose=0)
    assert np.allclose(keras_probabilities(model, x), softmax(raw), atol=1e-6)


@pytest.mark.parametrize("mode", ["fp32", "int8"])
def test_a_logits_model_converts_with_a_logits_manifest(logits_run, mode):
    folder, _ = logits_run
    manifest = Manifest.load(folder / f"model_{mode}.json")
    assert manifest.output_kind == "logits"
    classifier = Classifier.from_file(folder / f"model_{mode}.tflite")
    assert classifier.outputs_logits


@pytest.mark.parametrize("mode", ["fp32", "int8"])
def test_its_scores_are_probabilities_and_its_answers_right(logits_run, mode):
    folder, held = logits_run
    classifier = Classifier.from_file(folder / f"model_{mode}.tflite")
    for path, truth in cm.class_files(held, cm.BRIGHTNESS):
        scores = classifier.predict(classifier.prepare(path))
        assert scores.min() >= 0.0 and scores.sum() == pytest.approx(1.0, abs=1e-5)
        assert cm.BRIGHTNESS[int(scores.argmax())] == truth, path


def test_its_drift_compares_probabilities_with_probabilities(logits_run):
    folder, _ = logits_run
    report = json.loads((folder / "conversion_report.json").read_text())
    fp32 = next(m for m in report["modes"] if m["mode"] == "fp32")
    assert report["keras_accuracy"] == 1.0
    assert fp32["drift"]["accuracy"] == 1.0 and fp32["drift"]["top1_agreement"] == 1.0
    # softmax vs softmax: a float32 conversion differs only in rounding
    assert fp32["drift"]["max_abs_diff"] < 1e-4
    assert fp32["drift"]["mean_kl"] >= 0.0


def test_predict_shows_a_probability_never_a_logit(logits_run):
    folder, held = logits_run
    image, truth = cm.class_files(held, cm.BRIGHTNESS)[0]
    result = CliRunner().invoke(main, ["predict", str(folder / "model_int8.tflite"), str(image),
                                       "--json"])
    assert result.exit_code == 0, result.output
    top = json.loads(result.stdout)["predictions"][0]["top"]
    assert top[0]["label"] == truth
    assert all(0.0 <= entry["score"] <= 1.0 for entry in top)
    assert sum(entry["score"] for entry in top) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("kind, expected", [
    ("softmax then Reshape", "probabilities"), ("logits then Flatten", "logits"),
    ("nested softmax head", "probabilities"), ("logits then Dropout", "logits")])
def test_layers_after_the_activation_are_looked_through(kind, expected):
    import keras

    inputs = keras.Input((4,))
    if kind == "softmax then Reshape":
        out = keras.layers.Reshape((3,))(keras.layers.Dense(3, activation="softmax")(inputs))
    elif kind == "logits then Flatten":
        out = keras.layers.Flatten()(keras.layers.Dense(3)(inputs))
    elif kind == "nested softmax head":
        out = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])(
            inputs)
    else:
        out = keras.layers.Dropout(0.1)(keras.layers.Dense(3)(inputs))
    assert keras_output_kind(keras.Model(inputs, out)) == expected


def test_an_output_layer_that_cannot_say_is_refused_naming_the_file(tmp_path):
    import keras

    inputs = keras.Input((cm.SIZE, cm.SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Lambda(lambda v: v * 2.0)(keras.layers.Dense(3)(x))
    path = _save(keras.Model(inputs, out), tmp_path / "lambda")
    result = CliRunner().invoke(main, ["convert", str(path), "--fp32"])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {path}: cannot tell whether")
