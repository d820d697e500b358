"""A bare ``.keras`` has no test split: drift is measured on ``--eval-data`` (held out,
no file shared with calibration), or the console and the report say plainly it was not.

The model is ``brightness_model("rescaling")`` (tests/contract_models.py): raw 0..255 in,
dark / mid / bright by the mean pixel, weights set by hand, so the right accuracy on the
generated images is known: 100%.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.errors import DataError
from tests import contract_models as cm


def _bare(folder: Path) -> Path:
    """The brightness model as a user's own .keras with labels.txt beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("\n".join(cm.BRIGHTNESS) + "\n")
    cm.brightness_model("rescaling").save(folder / "bright.keras")
    return folder / "bright.keras"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """Two disjoint image sets: calibration (seed 0) and held-out eval (seed 1)."""
    root = tmp_path_factory.mktemp("held_out")
    return {"calib": cm.write_brightness_images(root / "calib", per_class=6, seed=0),
            "eval": cm.write_brightness_images(root / "eval", per_class=5, seed=1)}


def _errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_without_eval_data_the_console_and_the_report_say_drift_was_not_measured(tmp_path):
    path = _bare(tmp_path)
    result = CliRunner().invoke(main, ["convert", str(path), "--fp32"])
    assert result.exit_code == 0, result.output
    line = (f"drift not measured: {path} has no test split; pass --eval-data DIR (class "
            "folders of held-out labelled data, none of it in the calibration data) to "
            "measure accuracy and drift per mode")
    assert f"warning: {line}" in result.stdout.splitlines()
    report = json.loads((tmp_path / "conversion_report.json").read_text())
    assert report["drift_measured"] is False and report["drift_data"] == line
    assert report["keras_accuracy"] is None and report["modes"][0]["drift"] is None
    assert f"- task: image; {line}; Keras accuracy: None" in (
        tmp_path / "conversion_report.md").read_text().splitlines()


def test_eval_data_measures_the_right_accuracy_and_drift_per_mode(tmp_path, images):
    path = _bare(tmp_path / "m")
    result = CliRunner().invoke(main, ["convert", str(path), "--fp32", "--int8", "--calib-data",
                                       str(images["calib"]), "--eval-data", str(images["eval"]),
                                       "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["drift_measured"] is True
    assert report["drift_data"] == f"all 15 samples of {images['eval']} (--eval-data)"
    assert report["test_samples"] == 15 and report["keras_accuracy"] == 1.0
    for row in report["modes"]:
        assert row["drift"]["samples"] == 15, row["mode"]
        assert row["drift"]["accuracy"] == 1.0 and row["drift"]["top1_agreement"] == 1.0
    assert "drift measured on all 15 samples of" in (
        tmp_path / "m" / "conversion_report.md").read_text()
    # 18 calibration images: fewer than TFLite's ~100; with --json the warning goes to stderr
    assert ("warning: calibration uses only 18 samples; TFLite's post-training quantization "
            "guide suggests about 100-500") in result.stderr.splitlines()


def test_eval_data_that_is_the_calibration_folder_is_refused(tmp_path, images):
    path = _bare(tmp_path)
    with pytest.raises(DataError) as info:
        _convert(path, images["calib"], images["calib"])
    assert str(info.value).startswith(
        f"{images['calib']}: 18 eval file(s) are also calibration data (same content), e.g. ")
    assert str(info.value).endswith(": accuracy on them is not held out; use disjoint folders")
    assert not (tmp_path / "model_int8.tflite").exists()


def _convert(path: Path, calib: Path | None, eval_data: Path, modes=("int8",)):
    from edgepose.converters import ConvertOptions, run_conversion

    return run_conversion(path, list(modes), ConvertOptions(calib_data=calib,
                                                            eval_data=eval_data))


def test_one_calibration_image_copied_under_another_name_is_found_by_its_content(tmp_path,
                                                                               images):
    path = _bare(tmp_path / "m")
    held = tmp_path / "eval"
    shutil.copytree(images["eval"], held)
    shutil.copy(images["calib"] / "mid" / "3.png", held / "mid" / "renamed.png")
    with pytest.raises(DataError) as info:
        _convert(path, images["calib"], held)
    assert str(info.value) == (
        f"{held}: 1 eval file(s) are also calibration data (same content), e.g. renamed.png = "
        f"{images['calib'] / 'mid' / '3.png'}: accuracy on them is not held out; use disjoint "
        "folders")


def test_an_eval_image_inside_a_calibration_npy_is_found_by_its_values(tmp_path, images):
    from PIL import Image

    path = _bare(tmp_path / "m")
    eval_file = images["eval"] / "dark" / "2.png"
    rows = np.stack([np.asarray(Image.open(p).convert("RGB"), np.float32)
                     for p in [images["calib"] / "mid" / "0.png", eval_file]])
    np.save(tmp_path / "calib.npy", rows)
    with pytest.raises(DataError) as info:
        _convert(path, tmp_path / "calib.npy", images["eval"])
    assert str(info.value) == (
        f"{images['eval']}: 1 eval file(s) are also calibration data (same content), e.g. "
        f"2.png = {tmp_path / 'calib.npy'} row 1: accuracy on them is not held out; use "
        "disjoint folders")


@pytest.mark.parametrize("layout, message", [
    ({"cat/a.png": 1}, "eval class folder 'cat' is not one of the model's labels "
                       "(dark, mid, bright)"),
    ({"a.png": 1}, "eval data needs class folders named after the model's labels "
                   "(dark, mid, bright); a.png is not in one"),
    ({"dark/a.png": 0}, "none of the 1 eval files is readable (e.g. dark/a.png: empty file)"),
    ({}, "no images in the eval folder"),
])
def test_eval_folders_that_cannot_be_labelled_are_one_line_errors(tmp_path, layout, message):
    from PIL import Image

    path = _bare(tmp_path / "m")
    held = tmp_path / "eval"
    held.mkdir()
    for name, readable in layout.items():
        (held / name).parent.mkdir(parents=True, exist_ok=True)
        if readable:
            Image.new("RGB", (32, 32)).save(held / name)
        else:
            (held / name).write_bytes(b"")
    result = CliRunner().invoke(main, ["convert", str(path), "--fp32", "--eval-data", str(held)])
    assert result.exit_code == 2
    assert _errors(result) == [f"error: {held}: {message}"]
    assert "Traceback" not in result.output


def test_unreadable_eval_files_are_skipped_and_listed(tmp_path, images):
    path = _bare(tmp_path / "m")
    held = tmp_path / "eval"
    shutil.copytree(images["eval"], held)
    (held / "dark" / "notes.png").write_text("not a picture")
    report = _convert(path, None, held, modes=("fp32",))
    assert report.test_samples == 15 and report.keras_accuracy == 1.0
    assert report.eval_skipped == [{"file": "dark/notes.png",
                                    "reason": "not a readable image (no image format "
                                              "recognised)"}]
    assert report.data_notes() == ["1 eval file(s) skipped: dark/notes.png (not a readable "
                                   "image (no image format recognised))"]
    assert report.drift_data == f"all 15 samples of {held} (--eval-data), 1 file(s) skipped"


def _hand_made_run(root: Path, images: Path) -> Path:
    """A run directory around the brightness model: files 0-3 of each class train, 4-5 test."""
    from edgepose.data.splits import Sample, Splits

    run = root / "run"
    run.mkdir(parents=True)
    (run / "labels.txt").write_text("\n".join(cm.BRIGHTNESS) + "\n")
    (run / "config.json").write_text(json.dumps({"task": "image"}))
    cm.brightness_model("rescaling").save(run / "model.keras")
    items = [Sample(f"{name}/{i}.png", label, "train" if i < 4 else "test")
             for label, name in enumerate(cm.BRIGHTNESS) for i in range(6)]
    Splits("image", str(images), list(cm.BRIGHTNESS), items).save(run / "splits.json")
    return run


def test_eval_data_holding_a_train_split_file_of_a_run_is_refused_even_without_calibration(
        tmp_path, images):
    run = _hand_made_run(tmp_path, images["calib"])
    held = tmp_path / "eval"
    shutil.copytree(images["eval"], held)
    shutil.copy(images["calib"] / "bright" / "1.png", held / "bright" / "seen.png")
    with pytest.raises(DataError) as info:
        _convert(run, None, held, modes=("fp32",))
    assert str(info.value) == (
        f"{held}: 1 eval file(s) are also in the run's train/val split (same content), e.g. "
        f"seen.png = {images['calib'] / 'bright' / '1.png'}: accuracy on them is not held "
        "out; give data the model never trained on")


def test_eval_data_replaces_the_test_split_of_a_run_and_the_report_says_so(tmp_path, images):
    run = _hand_made_run(tmp_path, images["calib"])
    report = _convert(run, None, images["eval"], modes=("fp32",))
    assert report.drift_data == f"all 15 samples of {images['eval']} (--eval-data)"
    assert report.keras_accuracy == 1.0 and report.mode("fp32").drift.accuracy == 1.0
    without = _convert(run, None, None, modes=("fp32",))  # the run's own test split
    assert without.drift_data == f"all 6 samples of the test split of {images['calib']}"
    assert without.test_samples == 6 and without.data_notes() == []


def test_earlier_rows_measured_on_other_data_are_dropped_from_the_table_and_said(tmp_path,
                                                                               images):
    path = _bare(tmp_path / "m")
    _convert(path, None, None, modes=("fp32",))  # no eval data: fp32 drift not measured
    report = _convert(path, None, images["eval"], modes=("dynamic",))
    assert [m.mode for m in report.modes] == ["dynamic"]
    assert [(row.mode, row.reason) for row in report.stale] == [
        ("fp32", f"its drift was measured on other data (none), this report's on all 15 "
                 f"samples of {images['eval']} (--eval-data)")]
    again = _convert(path, None, images["eval"], modes=("fp32",))  # same data: both kept
    assert [m.mode for m in again.modes] == ["fp32", "dynamic"] and again.stale == []


def test_the_same_bare_model_converted_twice_without_eval_data_keeps_its_rows(tmp_path,
                                                                             monkeypatch):
    path = _bare(tmp_path / "m")
    _convert(path, None, None, modes=("fp32",))
    monkeypatch.chdir(tmp_path)  # the same model named by a relative path this time
    report = _convert(Path("m") / "bright.keras", None, None, modes=("dynamic",))
    assert [m.mode for m in report.modes] == ["fp32", "dynamic"] and report.stale == []
