import io
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from edgepose.errors import DataError, ModelError
from edgepose.rundir import RunDir, load_inputs
from edgepose.runtime import Classifier
from edgepose.runtime.delegation import inspect_model
from edgepose.runtime.input_contract import StatedContract
from edgepose.runtime.interpreter import explain_load_failure, find_backend
from edgepose.runtime.quantization import tensor_quantization
from edgepose.runtime.tflite_file import read_model_info


@pytest.fixture(scope="module")
def test_inputs(tiny_run):
    run = RunDir.open(tiny_run.run)
    samples = run.splits.samples("test")
    x, y = load_inputs(run.splits, samples, run.config)
    return run, samples, x, y


def test_int8_input_is_quantized_with_the_models_scale_and_zero_point(tiny_run, test_inputs):
    clf = Classifier.from_file(tiny_run.int8)
    image = test_inputs[2][0]
    clf.set_input(image)
    scale, zero_point = tensor_quantization(clf._input)
    expected = np.clip(np.round(image.astype(np.float64) / scale) + zero_point, -128, 127)
    tensor = clf.interpreter.get_tensor(clf._input["index"])[0]
    assert tensor.dtype == np.int8
    assert np.array_equal(tensor, expected.astype(np.int8))


def test_int8_output_is_dequantized_by_hand_formula(tiny_run, test_inputs):
    clf = Classifier.from_file(tiny_run.int8)
    probs = clf.predict(test_inputs[2][0])
    raw = clf.interpreter.get_tensor(clf._output["index"]).reshape(-1)
    scale, zero_point = tensor_quantization(clf._output)
    assert np.allclose(probs, (raw.astype(np.float64) - zero_point) * scale, atol=1e-7)
    assert probs.sum() == pytest.approx(1.0, abs=0.02)


def test_uint8_and_int8_io_models_give_the_same_probabilities(tiny_run, test_inputs):
    int8 = Classifier.from_file(tiny_run.int8)
    uint8 = Classifier.from_file(tiny_run.uint8)
    assert uint8.input_dtype == np.uint8
    for image in test_inputs[2][:4]:
        assert np.allclose(int8.predict(image), uint8.predict(image), atol=1 / 128)


def test_softmax_is_applied_only_to_a_logits_model(tiny_run, test_inputs):
    probs_model = Classifier.from_file(tiny_run.fp32)
    logits_model = Classifier.from_file(tiny_run.logits)
    assert logits_model.outputs_logits and not probs_model.outputs_logits
    image = test_inputs[2][0]
    assert np.allclose(logits_model.predict(image), probs_model.predict(image), atol=1e-5)


def test_without_manifest_a_softmax_output_is_detected_from_the_graph(tiny_run, tmp_path):
    for model in (tiny_run.fp32, tiny_run.logits):
        shutil.copy(model, tmp_path / model.name)
    # Without a manifest a float image model must be told its pixel range.
    raw = StatedContract(input_range=(0.0, 255.0))
    assert not Classifier.from_file(tmp_path / tiny_run.fp32.name, stated=raw).outputs_logits
    assert Classifier.from_file(tmp_path / tiny_run.logits.name, stated=raw).outputs_logits


def test_prepare_image_matches_the_training_pipeline_array(tiny_run, test_inputs):
    run, samples, x, _ = test_inputs
    clf = Classifier.from_file(tiny_run.int8)
    for sample, expected in zip(samples, x, strict=True):
        path = run.splits.absolute(sample)
        assert np.array_equal(clf.prepare_image(path), expected)
        assert np.array_equal(clf.prepare_image(Image.open(path)), expected)


def test_top_k_ranks_labels_with_scores(tiny_run, test_inputs):
    clf = Classifier.from_file(tiny_run.fp32)
    run, samples, x, _ = test_inputs
    probs = clf.predict(x[0])
    top = clf.classify(run.splits.absolute(samples[0]), k=2)
    best = np.argsort(-probs)[:2]
    assert [t.index for t in top] == best.tolist()
    assert [t.label for t in top] == [tiny_run.labels[i] for i in best]
    assert [t.score for t in top] == pytest.approx(probs[best].tolist())


def test_keypoint_model_takes_a_vector(tiny_run):
    clf = Classifier.from_file(tiny_run.keypoints)
    assert clf.task == "keypoints" and clf.preprocessing is None
    probs = clf.predict(np.random.default_rng(0).random(34, dtype=np.float32))
    assert probs.shape == (3,) and probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_input_of_the_wrong_shape_is_a_data_error(tiny_run):
    clf = Classifier.from_file(tiny_run.fp32)
    with pytest.raises(DataError, match=r"shape \(16, 16, 3\).*expects \(32, 32, 3\)"):
        clf.predict(np.zeros((16, 16, 3), np.uint8))


def test_labels_count_mismatch_is_a_model_error(tiny_run, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    with pytest.raises(ModelError, match="3 outputs but 2 labels"):
        Classifier.from_file(tiny_run.fp32, labels_path=labels)


def test_missing_model_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        Classifier.from_file(tmp_path / "nope.tflite")


def test_corrupt_model_file_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(ModelError, match="not a TFLite model"):
        Classifier.from_file(bad)


def test_empty_model_file_is_a_model_error(tmp_path):
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="empty file"):
        Classifier.from_file(empty)


def test_truncated_model_file_is_a_model_error(tiny_run, tmp_path):
    data = tiny_run.int8.read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ModelError, match="truncated"):
        Classifier.from_file(cut)


def test_labels_packed_into_the_model_are_used_without_a_manifest(tiny_run, tmp_path):
    # The TFLite Metadata writer appends associated files as a zip after the flatbuffer.
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("labels.txt", "cat\ndog\nbird\n")
    model = tmp_path / "with_labels.tflite"
    model.write_bytes(tiny_run.fp32.read_bytes() + packed.getvalue())
    assert read_model_info(model).associated_files == ["labels.txt"]
    clf = Classifier.from_file(model, stated=StatedContract(input_range=(0.0, 255.0)))
    assert clf.labels == ["cat", "dog", "bird"]
    assert clf.labels_source == "labels embedded in the model"


def test_the_converter_version_is_read_from_the_model(tiny_run):
    info = read_model_info(tiny_run.int8)
    import tensorflow as tf  # allowed in tests: only to know what built the fixture

    assert info.converter_version == tf.__version__


def test_an_old_runtime_error_names_the_runtime_to_install(tiny_run):
    # The message tflite-runtime 2.14.0 gives for a TF 2.21 dynamic-range model.
    message = ("Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'. An older "
               "version of this builtin might be supported.\nRegistration failed.")
    text = explain_load_failure(message, find_backend(), read_model_info(tiny_run.int8))
    assert "FULLY_CONNECTED version 12" in text
    assert "ai-edge-litert>=2.0" in text and "TensorFlow 2.21" in text


def test_int8_hard_swish_stays_outside_xnnpack(tiny_run):
    report = inspect_model(tiny_run.int8)
    assert report.ops_outside == {"HARD_SWISH": 1, "SOFTMAX": 1}
    assert report.partitions == 2 and report.delegated_nodes == report.total_nodes - 2


def test_float_model_is_fully_delegated_and_no_xnnpack_has_no_partition(tiny_run):
    assert inspect_model(tiny_run.fp32).fully_delegated
    off = inspect_model(tiny_run.fp32, use_xnnpack=False)
    assert off.partitions == 0 and off.delegated_nodes == 0
    assert sum(off.ops_outside.values()) == off.total_nodes
