"""RunDir owns the run-directory layout: every other module asks it for a file name."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgepose.errors import DataError
from edgepose.rundir import RunDir


def test_the_layout_names_each_file_of_a_run(tmp_path):
    run = RunDir(tmp_path)
    assert run.tflite_path("int8") == tmp_path / "model_int8.tflite"
    assert run.manifest_path("int8") == tmp_path / "model_int8.json"
    assert run.tflite_path("fp16", stem="pose") == tmp_path / "pose_fp16.tflite"
    assert run.manifest_path("int8-fallback", stem="pose") == tmp_path / "pose_int8-fallback.json"
    assert run.reference_outputs_path == tmp_path / "reference_outputs.npz"
    assert run.conversion_report_path() == tmp_path / "conversion_report.json"
    assert run.conversion_report_path(".md") == tmp_path / "conversion_report.md"
    assert (run.model_path, run.config_path, run.splits_path, run.labels_path) == (
        tmp_path / "model.keras", tmp_path / "config.json", tmp_path / "splits.json",
        tmp_path / "labels.txt")


@pytest.mark.parametrize("name, mode", [
    ("model_int8.tflite", "int8"),
    ("model_int8-fallback.tflite", "int8-fallback"),
    ("runs/a/model_fp16.tflite", "fp16"),
    ("model_.tflite", None),  # no mode after the prefix
    ("model.tflite", None),
    ("mobilenet_int8.tflite", None),  # another stem states no edgepose mode
])
def test_the_mode_a_file_name_states(name, mode):
    assert RunDir.mode_in_name(Path(name)) == mode


def test_open_refuses_a_folder_without_a_config(tmp_path):
    with pytest.raises(DataError, match="not an edgepose run directory \\(no config.json\\)"):
        RunDir.open(tmp_path)


def test_holds_splits_needs_both_config_and_splits(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert not RunDir.holds_splits(tmp_path)
    (tmp_path / "splits.json").write_text("{}")
    assert RunDir.holds_splits(tmp_path)
