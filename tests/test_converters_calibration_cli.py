"""`edgepose convert --calib-data` on folders that are not a clean calibration set: what the
console and the report say, and what is refused (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgepose.cli import main
from tests import contract_models as cm


@pytest.fixture(scope="module")
def calib(tmp_path_factory) -> Path:
    return cm.write_brightness_images(tmp_path_factory.mktemp("calib_cli"), per_class=4)


def _bare(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("\n".join(cm.BRIGHTNESS) + "\n")
    cm.brightness_model("rescaling").save(folder / "bright.keras")
    return folder / "bright.keras"


def _warnings(result) -> list[str]:
    return [line[len("warning: "):] for line in result.stdout.splitlines()
            if line.startswith("warning: ")]


def test_unreadable_calibration_files_are_listed_in_the_console_and_the_report(tmp_path, calib):
    path = _bare(tmp_path / "m")
    folder = tmp_path / "calib"
    shutil.copytree(calib, folder)
    (folder / "dark" / "zero.png").write_bytes(b"")
    (folder / "mid" / "text.png").write_text("hello")
    result = CliRunner().invoke(main, ["convert", str(path), "--int8", "--calib-data",
                                       str(folder)])
    assert result.exit_code == 0, result.output
    skipped = ("2 calibration file(s) skipped: dark/zero.png (empty file); "
               "mid/text.png (not a readable image (no image format recognised))")
    assert skipped in _warnings(result)
    report = json.loads((tmp_path / "m" / "conversion_report.json").read_text())
    assert report["calibration"]["samples"] == 12
    assert report["calibration"]["class_counts"] == {"bright": 4, "dark": 5, "mid": 5}
    markdown = (tmp_path / "m" / "conversion_report.md").read_text().splitlines()
    assert f"- {skipped}" in markdown
    assert (f"- calibration: all 14 samples from {folder}, 2 unreadable skipped: 12 used; "
            "classes: bright 4, dark 5, mid 5") in markdown


def test_one_class_calibration_is_one_line_and_nothing_is_written(tmp_path, calib):
    path = _bare(tmp_path / "m")
    folder = tmp_path / "calib"
    shutil.copytree(calib / "mid", folder / "mid")
    result = CliRunner().invoke(main, ["convert", str(path), "--int8", "--calib-data",
                                       str(folder)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {folder}: calibration data has one class folder ('mid', 4 files) for a model "
        "with 3 classes: int8 ranges calibrated on one class clip the others; add the other "
        "classes, or pass --allow-one-class"]
    assert not list((tmp_path / "m").glob("model_*"))


def test_one_class_allowed_converts_and_the_report_keeps_the_warnings(tmp_path, calib):
    path = _bare(tmp_path / "m")
    folder = tmp_path / "calib"
    shutil.copytree(calib / "mid", folder / "mid")
    result = CliRunner().invoke(main, ["convert", str(path), "--int8", "--calib-data",
                                       str(folder), "--allow-one-class"])
    assert result.exit_code == 0, result.output
    expected = ["calibration has one class folder ('mid') for a model with 3 classes "
                "(--allow-one-class)",
                "calibration uses only 4 samples; TFLite's post-training quantization guide "
                "suggests about 100-500"]
    assert _warnings(result)[1:] == expected  # after "drift not measured"
    report = json.loads((tmp_path / "m" / "conversion_report.json").read_text())
    assert report["calibration"]["warnings"] == expected
    assert (tmp_path / "m" / "model_int8.tflite").is_file()


def test_keypoint_files_not_json_or_with_no_person_are_skipped_and_listed(tmp_path):
    from edgepose.converters import calibration as calib_module
    from tests.keypoint_poses import write_pose_dataset

    folder = write_pose_dataset(tmp_path, "pixels", per_class=6)
    (folder / "up" / "broken.json").write_text("{not json")
    (folder / "up" / "zero.json").write_text(json.dumps({"keypoints": [0.0] * 28}))
    data = calib_module.from_folder(folder, {"task": "keypoints", "keypoint_layout": "body14"})
    assert len(data) == 12
    assert data.skipped == [("up/broken.json", "not valid JSON (Expecting property name "
                                                "enclosed in double quotes: line 1 column 2 "
                                                "(char 1))"),
                            ("up/zero.json", "no person: all 28 keypoint numbers are 0")]
