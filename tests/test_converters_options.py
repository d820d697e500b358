"""ConvertOptions: every option checked once, before any model is loaded."""

from __future__ import annotations

import pytest

from edgepose.converters.options import ConvertOptions
from edgepose.errors import ConfigError


@pytest.mark.parametrize("options, message", [
    (ConvertOptions(io="int4"), "--io must be one of int8, uint8, float, not 'int4'"),
    (ConvertOptions(compat="tflite-1.0"),
     "--compat must be one of tflite-runtime, not 'tflite-1.0'"),
    (ConvertOptions(hardswish_rewrite="yes"),
     "--hardswish-rewrite must be auto, on or off, not 'yes'"),
    (ConvertOptions(auto_fallback=True),
     "--auto-fallback needs --max-drop (the accuracy budget to meet)"),
    (ConvertOptions(calib_samples=0), "--calib-samples must be at least 1, not 0"),
])
def test_each_bad_option_is_one_line_naming_its_flag(options, message):
    with pytest.raises(ConfigError) as raised:
        options.validate(["fp32"])
    assert raised.value.message == message


def test_an_unknown_mode_is_refused_before_the_options():
    with pytest.raises(ConfigError, match="int3"):
        ConvertOptions(io="int4").validate(["int3"])


def test_modes_are_deduplicated_in_order_and_fallback_adds_int8():
    assert ConvertOptions().validate(["fp16", "fp32", "fp16"]) == ["fp16", "fp32"]
    assert ConvertOptions(auto_fallback=True, max_drop=1.0).validate(["fp32"]) == [
        "fp32", "int8"]
    assert ConvertOptions(auto_fallback=True, max_drop=1.0).validate(["int8", "fp32"]) == [
        "int8", "fp32"]


def test_convert_run_refuses_bad_options_before_touching_the_source(tmp_path):
    from edgepose.converters import convert_run

    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match="--calib-samples must be at least 1, not -3"):
        convert_run(missing, ["int8"], calib_samples=-3)  # not "no such run directory"
    assert not missing.exists()
