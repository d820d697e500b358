"""Atomic writes, --max-drop, and auto-fallback on a model built to quantize badly."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import edgepose.converters.mode_steps as mode_steps_module
import edgepose.converters.tflite as tflite_module
from edgepose.cli import main
from edgepose.converters import convert_run
from edgepose.errors import ConversionError, DriftExceeded
from tests.run_fixtures import ruined_int8_copy


def _copy(run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


@pytest.fixture(scope="module")
def bad_run(digits_run, tmp_path_factory):  # noqa: F811
    """Same float function as the digits model, hopeless per-channel int8 weights
    (:func:`tests.run_fixtures.ruined_int8_copy`)."""
    return ruined_int8_copy(digits_run, tmp_path_factory.mktemp("bad") / "run")


def test_failed_conversion_keeps_the_previous_model_byte_identical(digits_run, tmp_path,  # noqa: F811
                                                                   monkeypatch):
    run = _copy(digits_run, tmp_path)
    convert_run(run, ["fp32"])
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.name.startswith("model_fp32")}

    def fail_after_writing_the_model(*args, **kwargs):
        raise ConversionError("simulated failure while writing the manifest")

    monkeypatch.setattr(mode_steps_module, "build_manifest", fail_after_writing_the_model)
    with pytest.raises(ConversionError, match="simulated"):
        convert_run(run, ["fp32"])
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.name.startswith("model_fp32")}
    assert after == before
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_converter_failure_mid_way_keeps_earlier_modes_and_old_files(digits_run, tmp_path,  # noqa: F811
                                                                      monkeypatch):
    run = _copy(digits_run, tmp_path)
    convert_run(run, ["int8"])
    old_int8 = (run / "model_int8.tflite").read_bytes()
    real = tflite_module.run_converter

    def raise_on_int8(converter, source, what, layer_names=()):
        if what == "int8":
            raise ConversionError("converter crashed", source)
        return real(converter, source, what, layer_names)

    monkeypatch.setattr(tflite_module, "run_converter", raise_on_int8)
    with pytest.raises(ConversionError, match="converter crashed"):
        convert_run(run, ["fp32", "int8"])
    assert (run / "model_int8.tflite").read_bytes() == old_int8
    assert (run / "model_fp32.tflite").is_file()


def test_max_drop_passes_when_modes_are_within_budget(digits_run, tmp_path):  # noqa: F811
    report = convert_run(_copy(digits_run, tmp_path), ["fp32"], max_drop=0.0)
    assert report.failed_modes == []


def test_max_drop_fails_when_int8_loses_too_much(bad_run):
    with pytest.raises(DriftExceeded, match="int8 lost more than 5.0"):
        convert_run(bad_run, ["int8"], max_drop=5.0)


def test_max_drop_exits_with_code_3_from_the_cli(bad_run):
    result = CliRunner().invoke(main, ["convert", str(bad_run), "--int8", "--max-drop", "5"])
    assert result.exit_code == 3
    assert "int8 lost more than 5.0" in result.stderr


def test_auto_fallback_keeps_the_worst_layer_float_and_recovers_accuracy(bad_run):
    report = convert_run(bad_run, ["int8"], max_drop=5.0, auto_fallback_enabled=True)
    int8, fallback = report.mode("int8"), report.mode("int8-fallback")
    assert int8.drop_pct > 30.0
    assert fallback.drop_pct < int8.drop_pct
    assert fallback.drop_pct <= 5.0
    assert report.fallback.within_budget and report.failed_modes == []
    assert any("probabilities" in name for name in fallback.float_layers)
    assert fallback.input_dtype == "int8"
    assert "int8-fallback" in (bad_run / "conversion_report.md").read_text()
    assert np.isfinite(fallback.latency_ms)



def test_refusal_names_the_modes_still_within_budget(bad_run, tmp_path):
    run = _copy(bad_run, tmp_path)
    with pytest.raises(DriftExceeded) as refused:
        convert_run(run, ["fp32", "dynamic", "int8"], max_drop=5.0)
    report = json.loads((run / "conversion_report.json").read_text())
    modes = {m["mode"]: m for m in report["modes"]}
    kept = [f"{mode} ({-100 * modes[mode]['drift']['accuracy_delta'] + 0.0:.2f})"
            for mode in ("fp32", "dynamic")]
    assert str(refused.value).endswith(f"; within it: {', '.join(kept)}")
    assert kept[0] == "fp32 (0.00)"


def test_refusal_with_no_mode_within_budget_names_the_lighter_modes(bad_run, tmp_path):
    result = CliRunner().invoke(main, ["convert", str(_copy(bad_run, tmp_path)), "--int8",
                                       "--max-drop", "5"])
    assert result.exit_code == 3
    assert ("no converted mode is within it; try --fp16 or --dynamic (float activations)"
            in result.stderr)
