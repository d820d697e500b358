"""`edgepose bench` times any .tflite like benchmark_model: every tensor listed, no accuracy
unless it is a classifier with data. Real models built here with known outputs."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.bench import run_bench
from edgepose.bench.any_model import AnyModel
from edgepose.cli import main
from edgepose.errors import DataError
from tests import tflite_models

ASSETS = Path(__file__).resolve().parent.parent / ".cache" / "assets"


@pytest.fixture(scope="module")
def two_by_two(tmp_path_factory):
    """Two inputs a, b of shape [1, 4]; outputs a + b and 2a (known values for any input)."""
    import keras

    folder = tmp_path_factory.mktemp("anymodel")
    a = keras.Input((4,), batch_size=1, name="a")
    b = keras.Input((4,), batch_size=1, name="b")
    model = keras.Model([a, b], [keras.layers.Add()([a, b]),
                                 keras.layers.Rescaling(2.0)(a)])
    return tflite_models.convert_keras(model, folder / "two_by_two.tflite", folder, "fp32")


@pytest.fixture(scope="module")
def dynamic_batch(tmp_path_factory):
    """A model whose stored input shape is [-1, 6] (batch not fixed)."""
    import keras

    folder = tmp_path_factory.mktemp("dynamic")
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    return tflite_models.convert_keras(model, folder / "dynamic.tflite", folder, "fp32")


@pytest.fixture(scope="module")
def dense_map(tmp_path_factory):
    """One image in, one feature map out ([1, 8, 8, 2]): one output, but not class scores."""
    import keras

    folder = tmp_path_factory.mktemp("densemap")
    inputs = keras.Input((16, 16, 3), batch_size=1)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, strides=2, padding="same")(inputs))
    return tflite_models.convert_keras(model, folder / "dense_map.tflite", folder, "fp32")


def _names(model):
    return [t.name for t in AnyModel(model).tensors if t.role == "input"]


def test_every_input_and_output_is_listed(two_by_two):
    runner = AnyModel(two_by_two)
    described = [t.describe() for t in runner.tensors]
    assert [d.split(" ")[0] for d in described] == ["input", "input", "output", "output"]
    assert sorted(_names(two_by_two)) == ["serving_default_a:0", "serving_default_b:0"]
    assert all("[1, 4] float32" in d for d in described)


def test_given_inputs_give_the_models_exact_outputs(two_by_two, tmp_path):
    a = np.arange(4, dtype=np.float32)[None]
    b = np.full((1, 4), 10, np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    runner = AnyModel(two_by_two, given={"serving_default_a:0": tmp_path / "a.npy",
                                         "serving_default_b:0": tmp_path / "b.npy"})
    outputs = sorted((o.tolist() for o in runner.run()), key=lambda o: sum(o[0]))
    assert outputs == sorted([(a + b).tolist(), (2 * a).tolist()], key=lambda o: sum(o[0]))


def test_an_input_can_be_given_by_position(two_by_two, tmp_path):
    np.save(tmp_path / "x.npy", np.full((1, 4), 7, np.float32))
    runner = AnyModel(two_by_two, given={"1": tmp_path / "x.npy"})
    assert runner.inputs[1][1].tolist() == [[7.0] * 4]


def test_random_inputs_are_seeded(two_by_two):
    first = [x for _, x in AnyModel(two_by_two, seed=3).inputs]
    again = [x for _, x in AnyModel(two_by_two, seed=3).inputs]
    other = [x for _, x in AnyModel(two_by_two, seed=4).inputs]
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_an_array_of_the_wrong_shape_is_a_one_line_error(two_by_two, tmp_path):
    name = _names(two_by_two)[0]
    np.save(tmp_path / "x.npy", np.zeros((1, 5), np.float32))
    with pytest.raises(DataError, match=rf"input 0 '{name}' has shape \[-1, 4\] \(-1 = any\), "
                                        r"the array has \[1, 5\]"):
        AnyModel(two_by_two, given={name: tmp_path / "x.npy"})


def test_an_array_of_the_wrong_dtype_is_a_one_line_error(two_by_two, tmp_path):
    name = _names(two_by_two)[0]
    np.save(tmp_path / "x.npy", np.zeros((1, 4), np.int32))
    with pytest.raises(DataError, match=f"input 0 '{name}' is float32, the array is int32"):
        AnyModel(two_by_two, given={name: tmp_path / "x.npy"})


def test_an_unknown_input_name_lists_the_real_ones(two_by_two, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 4), np.float32))
    names = ", ".join(repr(n) for n in _names(two_by_two))
    with pytest.raises(DataError, match=f"no input named 'image'; inputs are {names}"):
        AnyModel(two_by_two, given={"image": tmp_path / "x.npy"})


def test_a_dynamic_batch_runs_at_batch_one(dynamic_batch):
    [tensor] = [t for t in AnyModel(dynamic_batch).tensors if t.role == "input"]
    assert tensor.shape == [1, 6] and tensor.signature == [-1, 6]
    assert "(stored as [-1, 6])" in tensor.describe()


def test_quantized_tensors_show_scale_and_zero_point(tiny_run):
    runner = AnyModel(tiny_run.int8)
    [inp] = [t for t in runner.tensors if t.role == "input"]
    assert inp.dtype == "int8" and inp.scale is not None
    assert f"scale {inp.scale:.6g} zero point {inp.zero_point}" in inp.describe()


def test_bench_times_a_multi_output_model_without_accuracy(two_by_two, tiny_run):
    result = run_bench([two_by_two], warmup=1, runs=3)
    [row] = result.rows
    assert row.kind == "any model" and row.accuracy is None and row.outputs == 2
    assert row.end_to_end_input == "random arrays" and row.invoke.count == 3
    assert ("two_by_two.tflite is timed as a generic model, not a classifier "
            "(model has 2 inputs ([1, 4] float32, [1, 4] float32); the classifier feeds one "
            "image or vector)") in result.warnings


def test_a_single_output_that_is_not_a_score_vector_is_timed_not_classified(dense_map):
    result = run_bench([dense_map], warmup=0, runs=2)
    [row] = result.rows
    assert row.kind == "any model" and row.outputs == 1
    assert ("dense_map.tflite is timed as a generic model, not a classifier (output shape "
            "[1, 8, 8, 2] is not a vector of class scores)") in result.warnings


def test_bench_with_data_on_a_non_classifier_says_there_is_no_accuracy(two_by_two, tiny_run):
    result = run_bench([two_by_two], data=tiny_run.data, warmup=0, runs=2)
    assert result.rows[0].accuracy is None
    assert ("two_by_two.tflite is timed as a generic model, not a classifier (model has 2 "
            "inputs ([1, 4] float32, [1, 4] float32); the classifier feeds one image or "
            "vector); no accuracy on the data given") in result.warnings


def test_bench_cli_input_option_times_given_arrays(two_by_two, tmp_path):
    name = _names(two_by_two)[0]
    np.save(tmp_path / "a.npy", np.ones((1, 4), np.float32))
    result = CliRunner().invoke(main, ["bench", str(two_by_two), "--input",
                                       f"{name}={tmp_path / 'a.npy'}", "--runs", "2",
                                       "--warmup", "0", "--print-json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["result"]["rows"][0]
    assert row["end_to_end_input"] == "given arrays" and len(row["tensors"]) == 4


def test_bench_cli_malformed_input_option_is_a_one_line_error(two_by_two):
    result = CliRunner().invoke(main, ["bench", str(two_by_two), "--input", "a.npy"])
    assert result.exit_code == 2
    assert "--input must look like NAME=FILE.npy, not 'a.npy'" in result.output


def test_mediapipe_pose_landmark_model_is_timed_with_its_five_outputs():
    model = ASSETS / "pose_landmark_full.tflite"
    if not model.is_file():
        pytest.skip("run `python tests/assets.py` to fetch the MediaPipe model")
    result = CliRunner().invoke(main, ["bench", str(model), "--runs", "2", "--warmup", "0"])
    assert result.exit_code == 0, result.output
    for line in ("input 0 'input_1' [1, 256, 256, 3] float32",
                 "output 0 'Identity' [1, 195] float32", "output 1 'Identity_1' [1, 1] float32",
                 "output 2 'Identity_2' [1, 256, 256, 1] float32",
                 "output 3 'Identity_3' [1, 64, 64, 39] float32",
                 "output 4 'Identity_4' [1, 117] float32"):
        assert f"pose_landmark_full.tflite: {line}" in result.output
