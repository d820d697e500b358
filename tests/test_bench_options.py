"""BenchOptions: options that cannot go together are refused once, before any model loads."""

from __future__ import annotations

import pytest

from edgepose.bench.harness import run_bench
from edgepose.bench.options import BenchOptions
from edgepose.errors import ConfigError


@pytest.mark.parametrize("options, message", [
    (BenchOptions(data="d", split="test"), "give either --data or --split, not both"),
    (BenchOptions(split="test", inputs={"0": "x.npy"}),
     "give either --input arrays or labelled data (--data/--split)"),
    (BenchOptions(runs=0), "runs must be >= 1 and warmup >= 0 (got 0, 20)"),
    (BenchOptions(warmup=-1), "runs must be >= 1 and warmup >= 0 (got 200, -1)"),
    (BenchOptions(reference="onnx"), "reference must be auto, keras, fp32 or none, not 'onnx'"),
])
def test_each_bad_combination_is_one_line(options, message):
    with pytest.raises(ConfigError) as raised:
        options.validate()
    assert raised.value.message == message


def test_the_defaults_are_valid():
    BenchOptions().validate()


def test_run_bench_checks_options_before_opening_any_model(tmp_path):
    missing = tmp_path / "missing.tflite"  # never opened: the options fail first
    with pytest.raises(ConfigError, match="reference must be auto, keras, fp32 or none"):
        run_bench([missing], reference="onnx")
    with pytest.raises(ConfigError, match="no model given"):
        run_bench([])
