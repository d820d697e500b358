"""`edgepose bench` runs a classifier of any batch at batch 1 and scores it.

A fixed batch of 2, 3 or 4, or a dynamic batch (-1), is still one score vector per
sample: the bench resizes it to batch 1 like predict does, and reports accuracy,
instead of timing it as a "generic model" with no accuracy. Only a graph whose own
ops fix the batch cannot run one sample: timed as it is without data, one line with.
Real tiny .tflite models with hand-set weights (tests/contract_models.py), labels and
the 0..1 contract packed in as TFLite metadata.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgepose.bench.harness import run_bench
from edgepose.errors import ModelError
from edgepose.runtime.input_contract import InputContract
from tests import contract_models as cm


def _with_metadata(path: Path) -> Path:
    from edgepose.converters.metadata import add_metadata

    path.write_bytes(add_metadata(path.read_bytes(), path.stem, cm.BRIGHTNESS,
                                  InputContract.from_range(0.0, 1.0), (cm.SIZE, cm.SIZE)))
    return path


class Batches:
    def __init__(self, root: Path):
        import keras
        import tensorflow as tf

        self.images = cm.write_brightness_images(root / "images", per_class=2)
        self.models: dict[str, Path] = {}
        for batch in (2, 3, 4):
            spec = [tf.TensorSpec((batch, cm.SIZE, cm.SIZE, 3), tf.float32)]
            self.models[f"batch{batch}"] = _with_metadata(cm.to_tflite(
                cm.brightness_model("0..1", batch_size=batch), root / f"batch{batch}.tflite",
                signature=spec))
        dynamic = [tf.TensorSpec((None, cm.SIZE, cm.SIZE, 3), tf.float32)]
        self.models["dynamic"] = _with_metadata(cm.to_tflite(
            cm.brightness_model("0..1", batch_size=None), root / "dynamic.tflite",
            signature=dynamic))
        inputs = keras.Input((cm.SIZE, cm.SIZE, 3), batch_size=2)
        flat = keras.layers.Lambda(lambda x: tf.reshape(x, (2, cm.SIZE * cm.SIZE * 3)))(inputs)
        dense = keras.layers.Dense(3, activation="softmax")(flat)
        self.fixed = _with_metadata(cm.to_tflite(
            keras.Model(inputs, dense), root / "fixed2.tflite",
            signature=[tf.TensorSpec((2, cm.SIZE, cm.SIZE, 3), tf.float32)]))


@pytest.fixture(scope="module")
def batches(tmp_path_factory) -> Batches:
    return Batches(tmp_path_factory.mktemp("batches"))


@pytest.mark.parametrize("name", ["batch2", "batch3", "batch4", "dynamic"])
def test_a_classifier_of_any_batch_is_benched_at_batch_1_with_accuracy(batches, name):
    result = run_bench([batches.models[name]], data=batches.images, runs=3, warmup=0)
    [row] = result.rows
    assert row.kind == "classifier"
    [tensor] = [t for t in row.tensors if t.role == "input"]
    assert tensor.shape == [1, cm.SIZE, cm.SIZE, 3]
    assert row.accuracy == 1.0
    assert not [w for w in result.warnings if "generic model" in w]


def test_without_data_a_batch_2_classifier_is_timed_as_a_classifier(batches):
    [row] = run_bench([batches.models["batch2"]], runs=3, warmup=0).rows
    assert row.kind == "classifier" and row.end_to_end_input == "arrays"


def test_a_graph_fixing_its_batch_is_timed_as_it_is_without_data(batches):
    result = run_bench([batches.fixed], runs=3, warmup=0)
    [row] = result.rows
    assert row.kind == "any model"
    [tensor] = [t for t in row.tensors if t.role == "input"]
    assert tensor.shape == [2, cm.SIZE, cm.SIZE, 3]
    [note] = [w for w in result.warnings if "generic model" in w]
    assert note.startswith("fixed2.tflite is timed as a generic model, not a classifier (input "
                           "shape [2, 32, 32, 3] ")


def test_a_graph_fixing_its_batch_is_one_line_with_data(batches):
    with pytest.raises(ModelError) as info:
        run_bench([batches.fixed], data=batches.images, runs=3, warmup=0)
    assert info.value.path == batches.fixed
    assert info.value.message.startswith("input shape [2, 32, 32, 3] ")
    assert "[1, 32, 32, 3]" in info.value.message


def test_contract_flags_on_a_generic_model_are_said_not_applied(batches):
    from edgepose.runtime.input_contract import stated_contract

    result = run_bench([batches.fixed], runs=2, warmup=0, stated=stated_contract("0,1"))
    [note] = [w for w in result.warnings if "generic model" in w]
    assert note.endswith("; --input-range 0,1 not applied: its inputs are random or given "
                         "arrays")
