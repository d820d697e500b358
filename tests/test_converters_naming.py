"""One naming rule for converted files, owned by RunDir: ``model_<mode>.tflite`` (+ ``.json``
manifest) beside the source, whatever the source ``.keras`` is called; one model per folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.converters import convert_run
from edgepose.errors import ConfigError
from edgepose.rundir import RunDir
from tests import contract_models as cm


def _save(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cm.brightness_model("rescaling").save(folder / name)
    return folder / name


@pytest.mark.parametrize("name", ["my_model.keras", "model.keras", "mobilenet_v2.keras"])
def test_a_bare_keras_file_converts_to_the_names_rundir_gives(tmp_path, name):
    path = _save(tmp_path, name)
    report = convert_run(path, ["fp32", "dynamic"])
    folder = RunDir(tmp_path)
    for mode in ("fp32", "dynamic"):
        assert report.mode(mode).path == str(folder.tflite_path(mode))
        assert folder.tflite_path(mode) == tmp_path / f"model_{mode}.tflite"
        manifest = json.loads(folder.manifest_path(mode).read_text())
        assert manifest["mode"] == mode and Path(manifest["source_model"]).name == name
        assert RunDir.mode_in_name(folder.tflite_path(mode)) == mode
    assert sorted(p.name for p in tmp_path.glob("*.tflite")) == [
        "model_dynamic.tflite", "model_fp32.tflite"]


def test_the_cli_writes_the_names_the_readme_shows(tmp_path):
    path = _save(tmp_path, "dog.keras")
    result = CliRunner().invoke(main, ["convert", str(path), "--fp32", "--json"])
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert [Path(f).name for f in files] == ["model_fp32.tflite", "model_fp32.json",
                                            "conversion_report.json", "conversion_report.md"]
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "`model_<mode>.tflite`" in readme


def test_a_second_model_in_the_same_folder_is_refused_before_overwriting(tmp_path):
    first = _save(tmp_path, "cat.keras")
    convert_run(first, ["fp32"])
    before = (tmp_path / "model_fp32.tflite").read_bytes()
    second = _save(tmp_path, "dog.keras")
    with pytest.raises(ConfigError) as info:
        convert_run(second, ["fp32"])
    assert str(info.value) == (
        f"{tmp_path}: conversion_report.json here was converted from cat.keras, not dog.keras: "
        "converted models are named model_<mode>.tflite, one model per folder; move dog.keras "
        "into a folder of its own")
    assert (tmp_path / "model_fp32.tflite").read_bytes() == before


def test_a_stray_manifest_of_another_model_is_enough_to_refuse(tmp_path):
    (tmp_path / "model_int8.json").write_text(json.dumps({"source_model": "/x/other.keras"}))
    path = _save(tmp_path, "mine.keras")
    with pytest.raises(ConfigError, match=r"model_int8\.json here was converted from "
                                          r"other\.keras, not mine\.keras"):
        convert_run(path, ["fp32"])


def test_the_same_model_converts_again_into_its_folder(tmp_path):
    path = _save(tmp_path, "cat.keras")
    convert_run(path, ["fp32"])
    report = convert_run(path, ["dynamic"])
    assert [m.mode for m in report.modes] == ["fp32", "dynamic"]  # earlier row kept


def test_another_keras_file_inside_a_run_directory_is_refused(tmp_path):
    from edgepose.data.splits import Splits

    (tmp_path / "config.json").write_text(json.dumps({"task": "image"}))
    Splits("image", str(tmp_path), ["dark", "mid", "bright"], []).save(tmp_path / "splits.json")
    (tmp_path / "labels.txt").write_text("dark\nmid\nbright\n")
    _save(tmp_path, "model.keras")
    convert_run(tmp_path, ["fp32"])
    other = _save(tmp_path, "finetuned.keras")
    with pytest.raises(ConfigError, match=r"^.*: conversion_report\.json here was converted from "
                                          r"model\.keras, not finetuned\.keras"):
        convert_run(other, ["fp32"])
    assert json.loads((tmp_path / "model_fp32.json").read_text())["source_model"].endswith(
        "model.keras")
