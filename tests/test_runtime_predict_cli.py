import json

import numpy as np
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.data.layouts import get_layout
from tests import tflite_models

tiny_run = tflite_models.tiny_run  # session fixture: the tiny models and run directory


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
    data = json.loads(result.output)
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
    assert json.loads(result.output)["task"] == "keypoints"


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
