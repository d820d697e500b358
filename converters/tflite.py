"""Convert one mode: a fixed-batch SavedModel + a :class:`Mode` -> ``.tflite`` bytes.

The converter talks a lot (absl, MLIR diagnostics and C++ logs on file
descriptors 1 and 2); its output is captured and shown only when it fails.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from edgepose.converters.calibration import CalibrationSet
from edgepose.converters.modes import Mode
from edgepose.errors import ConversionError
from edgepose.quiet import captured_output

COMPAT_TARGETS = ("tflite-runtime",)


def _io_dtype(io: str):
    from edgepose.keras_quiet import tf

    return {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}[io]


def make_converter(saved_model_dir: str | Path, mode: Mode,
                   calibration: CalibrationSet | None = None, io: str = "int8",
                   compat: str | None = None):
    """A ``TFLiteConverter`` configured for ``mode`` (the one place modes become flags).

    Raises:
        ConversionError: a calibrated mode without calibration data.
    """
    from edgepose.keras_quiet import tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    if mode.optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode.float16_weights:
        converter.target_spec.supported_types = [tf.float16]
    if mode.calibrated:
        if calibration is None:
            raise ConversionError(f"mode {mode.name} needs calibration data", saved_model_dir)
        converter.representative_dataset = calibration.representative_dataset()
    if mode.int16_activations:
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    elif mode.full_integer:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = _io_dtype(io)
        converter.inference_output_type = _io_dtype(io)
    if compat == "tflite-runtime":
        # TF 2.21 writes per-channel dense layers as FULLY_CONNECTED v12, which
        # tflite-runtime 2.14 refuses; per-tensor dense weights keep it at v9.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    return converter


def run_converter(converter, source: str | Path, what: str,
                  layer_names: Sequence[str] = ()) -> bytes:
    """``converter.convert()`` with its logs captured; failures become ConversionError.

    Raises:
        ConversionError: the converter fails; its log is turned into one line naming the layer when
            it can.
    """
    with captured_output() as log:
        try:
            result = converter.convert()
            error = None
        except Exception as exc:  # the converter raises ConverterError, ValueError, ...
            result, error = None, exc
    if error is not None:
        raise ConversionError(explain_failure(f"{error}\n{log.text}", what, layer_names),
                              source) from None
    return result


def convert_mode(saved_model_dir: str | Path, mode: Mode,
                 calibration: CalibrationSet | None = None, io: str = "int8",
                 compat: str | None = None, source: str | Path | None = None,
                 layer_names: Sequence[str] = ()) -> bytes:
    """Convert the SavedModel in one mode and return the ``.tflite`` flatbuffer.

    ``layer_names`` (of the Keras model) let a failure name the offending layer.
    """
    converter = make_converter(saved_model_dir, mode, calibration, io, compat)
    return run_converter(converter, source or saved_model_dir, mode.name, layer_names)


def calibrate(saved_model_dir: str | Path, calibration: CalibrationSet,
              compat: str | None = None, source: str | Path | None = None) -> bytes:
    """A float model carrying calibrated ranges, to quantize later with a denylist."""
    from edgepose.converters.modes import MODES

    converter = make_converter(saved_model_dir, MODES["int8"], calibration, "float", compat)
    converter.experimental_new_quantizer = True
    converter._experimental_calibrate_only = True
    return run_converter(converter, source or saved_model_dir, "calibration")


def quantize_calibrated(calibrated: bytes, io: str = "int8",
                        float_nodes: Sequence[str] = (), compat: str | None = None,
                        source: str | Path = "model") -> bytes:
    """Full-integer quantization of a calibrated model, keeping ``float_nodes`` in float.

    ``float_nodes`` are output tensor names (as the QuantizationDebugger reports
    them); those ops stay float32 with quantize/dequantize around them.

    Raises:
        ConversionError: the quantizer fails (its log turned into one line).
    """
    from tensorflow.lite.python import convert as tf_convert

    with captured_output() as log:
        try:
            result = tf_convert.mlir_quantize(
                calibrated, fully_quantize=True, input_data_type=_io_dtype(io),
                output_data_type=_io_dtype(io), denylisted_nodes=list(float_nodes) or None,
                disable_per_channel_for_dense_layers=compat == "tflite-runtime")
            error = None
        except Exception as exc:
            result, error = None, exc
    if error is not None:
        raise ConversionError(explain_failure(f"{error}\n{log.text}", "int8-fallback"),
                              source) from None
    return result


_UNSUPPORTED = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
_LOCATION = re.compile(r'fused\["[^"]*",\s*"([^"@]+)')


def explain_failure(text: str, what: str, layer_names: Sequence[str] = ()) -> str:
    """One line: the unsupported ops and the layers they come from, or the first error."""
    ops: list[str] = []
    layers: list[str] = []
    for line in text.splitlines():
        match = _UNSUPPORTED.search(line)
        if match:
            if match.group(1) not in ops:
                ops.append(match.group(1))
            where = _LOCATION.search(line)
            if where:
                layer = _layer_from_location(where.group(1), layer_names)
                if layer and layer not in layers:
                    layers.append(layer)
    if ops:
        found = f" in layer {', '.join(layers)}" if layers else ""
        return (f"{what} conversion failed: TensorFlow op(s) {', '.join(ops)}{found} have no "
                "TFLite builtin kernel; replace the layer or use a supported activation")
    for line in text.splitlines():
        line = line.strip()
        if re.search(r"error|Error|Exception", line) and "WARNING" not in line:
            return f"{what} conversion failed: {line[:300]}"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "unknown error")
    return f"{what} conversion failed: {first[:300]}"


def _layer_from_location(location: str, layer_names: Sequence[str] = ()) -> str:
    # e.g. "functional_1/weird_1/erfinv/Erfinv" -> "weird": export name scopes are the
    # layer names, sometimes with a "_1" suffix added.
    parts = [p for p in location.split("/") if p]
    known = set(layer_names)
    for part in parts[1:]:
        for candidate in (part, re.sub(r"_\d+$", "", part)):
            if candidate in known:
                return candidate
    return parts[1] if len(parts) > 2 else (parts[0] if parts else "")
