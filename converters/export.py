"""Keras model -> a SavedModel with a fixed batch of one, exported once per conversion.

Why a fixed batch: with a variable batch dimension the converter keeps dynamic
shapes, and XNNPACK then splits e.g. EfficientNetB0 into 17 partitions. Why a
SavedModel: ``TFLiteConverter.from_keras_model`` re-exports on every call, and
``from_concrete_functions`` leaves variables unfrozen (models that fail at run
time), so every mode converts from the same exported directory.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from edgepose.errors import ModelError

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def keras_file_version(path: Path) -> str | None:
    """The Keras version recorded in a ``.keras`` archive (None when absent)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("metadata.json")).get("keras_version")
    except (KeyError, ValueError, zipfile.BadZipFile, OSError):
        return None


def load_keras_model(path: str | Path):
    """Load a ``.keras`` (or legacy ``.h5``) model; any problem is a one-line ModelError."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelError("model file not found", path)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not zipfile.is_zipfile(path) and head != _HDF5_SIGNATURE:
        raise ModelError("not a Keras model (expected a .keras zip archive or an .h5 file)",
                         path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                raise ModelError("zip archive without config.json: not a .keras model", path)
    version = keras_file_version(path) if head != _HDF5_SIGNATURE else None
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=False)
    except Exception as exc:  # Keras raises anything from TypeError to KeyError here
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:200]
        saved = f"saved by Keras {version}, " if version else ""
        raise ModelError(f"cannot load Keras model ({saved}this is Keras {keras.__version__}): "
                         f"{first}", path) from None
    check_model(model, path)
    return model


def check_model(model, path: str | Path) -> None:
    """A convertible classifier has exactly one input and one output with known shapes."""
    try:
        inputs, outputs = list(model.inputs or []), list(model.outputs or [])
    except (AttributeError, ValueError):
        inputs, outputs = [], []
    if not inputs or not outputs:
        raise ModelError("model has no inputs/outputs (an unbuilt Sequential model?); "
                         "save a built model with an Input layer", path)
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(f"expected one input and one output, model has {len(inputs)} inputs "
                         f"and {len(outputs)} outputs", path)
    shape = tuple(inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ModelError(f"input shape {tuple(inputs[0].shape)} has unknown dimensions; "
                         "fix the input size before converting", path)


def input_shape(model) -> tuple[int, ...]:
    """The model's input shape without the batch axis."""
    return tuple(int(d) for d in model.inputs[0].shape[1:])


def export_saved_model(model, out_dir: str | Path) -> Path:
    """Export the inference function with batch size 1 as a SavedModel in ``out_dir``."""
    import tensorflow as tf

    out_dir = Path(out_dir)
    signature = [tf.TensorSpec((1, *input_shape(model)), tf.float32, name="input")]
    model.export(str(out_dir), format="tf_saved_model", verbose=False,
                 input_signature=signature)
    return out_dir
