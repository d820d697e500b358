"""InputContract: ranges, what quantization parameters say, and writing pixels through it."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.errors import ConfigError, ModelError
from edgepose.runtime.input_contract import (
    InputContract,
    PixelWriter,
    contract_from_quantization,
    image_layout,
    stated_contract,
)
from edgepose.runtime.manifest import Manifest, TensorSpec
from edgepose.runtime.quantization import quantize


@pytest.mark.parametrize("lo, hi, mean, std", [
    (0.0, 255.0, 0.0, 1.0), (0.0, 1.0, 0.0, 255.0), (-1.0, 1.0, 127.5, 127.5),
    (-0.5, 0.5, 127.5, 255.0)])
def test_a_range_is_the_mean_and_std_of_normalization_options(lo, hi, mean, std):
    contract = InputContract.from_range(lo, hi)
    assert (contract.mean, contract.std) == ((mean,), (std,))
    assert contract.value_range == (lo, hi)
    assert np.allclose(contract.normalize(np.array([[[0, 255, 51]]], np.uint8)),
                       [[[lo, hi, lo + 0.2 * (hi - lo)]]])


@pytest.mark.parametrize("scale, zero_point, dtype, expected", [
    (1 / 255, 0, "uint8", (0.0, 1.0)),       # raw bytes for a 0..1 model
    (1 / 255, -128, "int8", (0.0, 1.0)),
    (1.0, 0, "uint8", (0.0, 255.0)),         # raw pixels for a 0..255 model
    (1.0, -128, "int8", (0.0, 255.0)),
    (1 / 128, 128, "uint8", (-1.0, 1.0)),    # MobileNet-style quantized input
    (1 / 127.5, 0, "int8", (-1.0, 1.0)),
    (0.5 / 255, 0, "uint8", None),           # 0..0.5: nothing known
    (0.1, 3, "uint8", None),
])
def test_quantization_parameters_state_a_known_range_or_nothing(scale, zero_point, dtype,
                                                                expected):
    contract = contract_from_quantization(scale, zero_point, dtype)
    assert (contract.value_range if contract else None) == expected


def test_the_source_of_a_quantization_contract_names_the_parameters():
    contract = contract_from_quantization(1 / 255, 0, "uint8")
    assert contract.describe() == ("input 0..1 = pixel / 255, RGB, NHWC, uint8 (from "
                                   "uint8 input quantization (scale 0.00392157, zero point 0 "
                                   "-> 0..1))")


@pytest.mark.parametrize("shape, layout", [
    ((1, 32, 32, 3), "NHWC"), ((1, 3, 32, 32), "NCHW"), ((1, 3, 3, 3), "NHWC"),
    ((1, 32, 32, 1), "NHWC"), ((1, 1, 32, 32), "NCHW"), ((1, 34), None), ((1, 3, 32), None),
    ((1, 5, 32, 7), None)])
def test_image_layout_from_the_input_shape(shape, layout):
    assert image_layout(shape) == layout


@pytest.mark.parametrize("dtype, quantization", [
    (np.float32, (0.0, 0)), (np.float16, (0.0, 0)), (np.int8, (1 / 255, -128)),
    (np.uint8, (1 / 255, 0)), (np.int8, (0.0123, 7))])
@pytest.mark.parametrize("order, layout", [("RGB", "NHWC"), ("BGR", "NHWC"), ("RGB", "NCHW"),
                                           ("BGR", "NCHW")])
def test_the_pixel_lookup_equals_normalizing_then_quantizing(dtype, quantization, order, layout):
    detail = {"dtype": dtype, "quantization": quantization}
    contract = InputContract(mean=(120.0, 110.0, 100.0), std=(60.0, 58.0, 57.0),
                             channel_order=order, layout=layout)
    shape = (1, 3, 6, 5) if layout == "NCHW" else (1, 6, 5, 3)
    image = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    writer = PixelWriter(detail, contract, shape)
    by_table = np.zeros(shape[1:], dtype)
    by_float = np.zeros(shape[1:], dtype)
    writer(image, by_table)
    writer(image.astype(np.float32), by_float)
    expected = quantize(contract.normalize(image), detail)
    if layout == "NCHW":
        expected = expected.transpose(2, 0, 1)
    assert np.array_equal(by_table, expected) and np.array_equal(by_float, expected)
    if order == "BGR":  # the first tensor channel holds blue
        blue = quantize((image[..., 2:3].astype(np.float32) - 100.0) / 57.0, detail)[..., 0]
        first = by_table[0] if layout == "NCHW" else by_table[..., 0]
        assert np.array_equal(first, blue)


def test_a_version_1_image_manifest_means_raw_pixels():
    manifest = Manifest("image", ["a"], "int8", TensorSpec([1, 8, 8, 3], "int8", 1.0, -128),
                        TensorSpec([1, 1], "int8", 1 / 256, -128), manifest_version=1)
    contract = manifest.contract()
    assert contract.is_raw and contract.dtype == "int8"
    assert contract.source == "the manifest (version 1: raw 0..255)"


def test_a_malformed_contract_in_a_manifest_is_a_model_error(tmp_path):
    manifest = Manifest("image", ["a"], "fp32", TensorSpec([1, 8, 8, 3], "float32"),
                        TensorSpec([1, 1], "float32"),
                        input_contract={"mean": [0.0], "std": [0.0]})
    with pytest.raises(ModelError, match="input std must be finite and non-zero"):
        manifest.contract(tmp_path / "model.json")


@pytest.mark.parametrize("flags, message", [
    (("0",), "--input-range takes 2 comma-separated numbers, got '0'"),
    (("1,0",), "--input-range needs two finite numbers lo < hi, got 1.0,0.0"),
    (("a,b",), "--input-range takes comma-separated numbers, got 'a,b'"),
    ((None, "1,2"), "--input-mean takes 1 or 3 comma-separated numbers, got '1,2'"),
    ((None, None, "0"), "input std must be finite and non-zero, got [0.0]"),
])
def test_bad_contract_flags_are_one_line_config_errors(flags, message):
    with pytest.raises(ConfigError) as info:
        stated_contract(*flags).apply()
    assert info.value.message == message


def test_predict_with_a_bad_range_exits_2_with_one_line(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"")
    result = CliRunner().invoke(main, ["predict", str(model), str(model), "--input-range", "1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: --input-range takes 2 comma-separated numbers, got '1'"]


@pytest.mark.parametrize("contract, line", [
    (InputContract.from_range(-1.0, 1.0), "input -1..1 = (pixel - 127.5) / 127.5, RGB, NHWC"),
    (InputContract.from_range(0.0, 255.0), "input 0..255 = pixel, RGB, NHWC"),
    (InputContract(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)),
     "= (pixel - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375], RGB, NHWC"),
    (InputContract(mean=(127.5,), std=(1.0,), channels=1), "= (pixel - 127.5), grey, NHWC"),
])
def test_the_contract_line_says_how_the_input_is_computed_from_a_pixel(contract, line):
    assert line in contract.describe()
