import numpy as np

from edgepose.runtime.quantization import InputQuantizer, dequantize, quantize

INT8 = {"dtype": np.int8, "quantization": (0.5, -10)}
UINT8 = {"dtype": np.uint8, "quantization": (1.0 / 255.0, 0)}
FLOAT = {"dtype": np.float32, "quantization": (0.0, 0)}


def test_quantize_rounds_divides_adds_zero_point_and_saturates():
    values = np.array([0.0, 1.0, 1.25, -3.0, 200.0, -200.0], dtype=np.float32)
    # 0/0.5-10=-10; 1/0.5-10=-8; 1.25/0.5=2.5 -> 2 (half to even) -10=-8; -6-10=-16; clip
    assert quantize(values, INT8).tolist() == [-10, -8, -8, -16, 127, -128]


def test_dequantize_subtracts_zero_point_and_scales():
    q = np.array([-10, -8, 127, -128], dtype=np.int8)
    assert dequantize(q, INT8).tolist() == [0.0, 1.0, 68.5, -59.0]


def test_uint8_round_trip_of_a_probability_is_within_half_a_step():
    p = np.array([0.0, 0.3, 0.7, 1.0], dtype=np.float32)
    back = dequantize(quantize(p, UINT8), UINT8)
    assert np.all(np.abs(back - p) <= 0.5 / 255 + 1e-7)


def test_float_tensors_pass_through_unchanged():
    values = np.array([1.5, -2.0], dtype=np.float32)
    assert quantize(values, FLOAT).tolist() == [1.5, -2.0]
    assert dequantize(values, FLOAT).dtype == np.float32


def test_input_quantizer_lookup_table_matches_quantize_for_every_pixel_value():
    detail = {"dtype": np.int8, "quantization": (1.0, -128)}
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = np.empty((16, 16), dtype=np.int8)
    InputQuantizer(detail, (16, 16))(pixels, out)
    assert np.array_equal(out, quantize(pixels.astype(np.float32), detail))
    assert out[0, 0] == -128 and out[-1, -1] == 127


def test_input_quantizer_handles_float_features_without_a_new_buffer():
    out = np.empty(4, dtype=np.int8)
    result = InputQuantizer(INT8, (4,))(np.array([0.0, 1.0, 2.0, 500.0], np.float32), out)
    assert result is out
    assert out.tolist() == [-10, -8, -6, 127]


def test_input_quantizer_shift_path_matches_quantize_for_uint8_io_and_other_zero_points():
    pixels = np.arange(256, dtype=np.uint8)
    for detail in ({"dtype": np.uint8, "quantization": (1.0, 0)},
                   {"dtype": np.int8, "quantization": (1.0, -100)},  # saturates: lookup path
                   {"dtype": np.int8, "quantization": (0.75, 3)}):
        out = np.empty(256, dtype=detail["dtype"])
        InputQuantizer(detail, (256,))(pixels, out)
        assert np.array_equal(out, quantize(pixels.astype(np.float32), detail))
