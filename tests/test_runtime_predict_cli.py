import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.runtime.layouts import get_layout
from tests import tflite_models


def test_predict_prints_top_k_table_for_images(tiny_run):
    images = [tiny_run.data / "one" / "000.png", tiny_run.data / "two" / "001.png"]
    result = CliRunner().invoke(main, ["predict", str(tiny_run.int8), *map(str, images),
                                       "-k", "2", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "000.png" in result.output and "001.png" in result.output
    assert "ai_edge_litert" in result.output and "HARD_SWISH" in result.output


def test_predict_json_lists_k_labels_per_input(tiny_run):
    image = tiny_run.data / "zero" / "002.png"
    result = CliRunner().invoke(main, ["predict", str(tiny_run.fp32), str(image), "--json",
                                       "--no-xnnpack"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["xnnpack"] is False
    [prediction] = data["predictions"]
    assert len(prediction["top"]) == 3
    assert {t["label"] for t in prediction["top"]} == set(tiny_run.labels)


def test_predict_reads_keypoint_json_files(tiny_run, tmp_path):
    layout = get_layout("coco17")
    sample = tmp_path / "pose.json"
    values = np.linspace(0.1, 0.9, layout.size).tolist()
    sample.write_text(json.dumps({"keypoints": values}))
    result = CliRunner().invoke(main, ["predict", str(tiny_run.keypoints), str(sample), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["task"] == "keypoints"


def test_predict_on_a_truncated_model_is_one_line_error(tiny_run, tmp_path):
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(tiny_run.int8.read_bytes()[:3000])
    result = CliRunner().invoke(main, ["predict", str(cut), str(tiny_run.data / "one/000.png")])
    assert result.exit_code == 2
    assert "truncated" in result.output and "Traceback" not in result.output


def test_predict_on_an_image_that_is_not_an_image_is_a_data_error(tiny_run, tmp_path):
    fake = tmp_path / "fake.jpg"
    fake.write_text("not a jpeg")
    result = CliRunner().invoke(main, ["predict", str(tiny_run.fp32), str(fake)])
    assert result.exit_code == 2 and "fake.jpg" in result.output


def _broken_inputs(tmp_path):
    """Four kinds of unreadable input: a truncated JPEG, an empty PNG, text named .jpg, a
    missing file; each with the one-line reason the CLI must print."""
    import io

    from PIL import Image

    photo = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG")
    cut = tmp_path / "broken.jpg"
    cut.write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not a jpeg")
    return {cut: "not a readable image (OSError: image file is truncated",
            empty: "empty file", text: "not a readable image", tmp_path / "gone.png":
            "file not found"}


def test_predict_classifies_the_readable_inputs_and_lists_the_others(tiny_run, tmp_path):
    good = [tiny_run.data / "one" / "000.png", tiny_run.data / "two" / "001.png"]
    broken = _broken_inputs(tmp_path)
    args = [str(good[0]), *map(str, broken), str(good[1])]
    result = CliRunner().invoke(main, ["predict", str(tiny_run.fp32), *args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [p["input"] for p in data["predictions"]] == [str(good[0]), str(good[1])]
    assert [f["input"] for f in data["failed"]] == [str(p) for p in broken]
    for failed, reason in zip(data["failed"], broken.values(), strict=True):
        assert failed["reason"].startswith(reason)


def test_predict_table_names_each_unreadable_input_with_its_reason(tiny_run, tmp_path):
    broken = _broken_inputs(tmp_path)
    good = tiny_run.data / "zero" / "002.png"
    result = CliRunner().invoke(main, ["predict", str(tiny_run.int8), str(good), *map(str, broken)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich may wrap long lines
    for path, reason in broken.items():
        assert f"could not process {path}: {reason}" in text


def test_predict_strict_fails_when_any_input_failed(tiny_run, tmp_path):
    broken = list(_broken_inputs(tmp_path))[:1]
    good = tiny_run.data / "zero" / "002.png"
    result = CliRunner().invoke(main, ["predict", str(tiny_run.fp32), str(good), str(broken[0]),
                                       "--strict"])
    assert result.exit_code == 2
    assert (f"1 of 2 input(s) could not be processed (--strict): {broken[0]}"
            in " ".join(result.output.split()))
    assert "Traceback" not in result.output


def test_predict_fails_when_no_input_could_be_processed(tiny_run, tmp_path):
    broken = _broken_inputs(tmp_path)
    result = CliRunner().invoke(main, ["predict", str(tiny_run.fp32), *map(str, broken)])
    assert result.exit_code == 2
    first = next(iter(broken))
    assert (f"none of the 4 input(s) could be processed (first: {first}: not a readable image"
            in " ".join(result.output.split()))


@pytest.fixture(scope="module")
def not_classifiers(tmp_path_factory):
    """Two models predict must refuse: two outputs, and one [1, 8, 8, 2] feature map."""
    import keras

    folder = tmp_path_factory.mktemp("notclassifiers")
    inputs = keras.Input((16, 16, 3), batch_size=1)
    features = keras.layers.Conv2D(2, 3, strides=2, padding="same")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    two = keras.Model(inputs, [keras.layers.Dense(3)(pooled), keras.layers.Dense(1)(pooled)])
    return (tflite_models.convert_keras(two, folder / "two_outputs.tflite", folder, "fp32"),
            tflite_models.convert_keras(keras.Model(inputs, features),
                                        folder / "feature_map.tflite", folder, "fp32"))


@pytest.mark.parametrize("which, why", [
    (0, ("model has 2 outputs (", "); a classifier has one output of class scores")),
    (1, ("output shape [1, 8, 8, 2] is not a vector of class scores",))])
def test_predict_refuses_a_model_that_is_not_a_classifier(not_classifiers, tiny_run, which, why):
    model = not_classifiers[which]
    result = CliRunner().invoke(main, ["predict", str(model),
                                       str(tiny_run.data / "one" / "000.png")])
    assert result.exit_code == 2
    [error] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: {model}: {why[0]}") and error.endswith(why[-1])
    assert "Traceback" not in result.output
