"""Keras model -> a SavedModel with a fixed batch of one, in inference mode, verified.

Why a fixed batch: with a variable batch dimension the converter keeps dynamic
shapes, and XNNPACK then splits e.g. EfficientNetB0 into 17 partitions. Why a
SavedModel: ``TFLiteConverter.from_keras_model`` re-exports on every call, and
``from_concrete_functions`` leaves variables unfrozen (models that fail at run
time), so every mode converts from the same exported directory.

Why inference mode: Keras 3's random augmentation layers (RandomFlip,
RandomRotation, ...) default to ``training=True`` when called without a
training flag, and ``model.export`` traces ``model(x)`` that way, so the
augmentation ops (stateless random, ImageProjectiveTransformV3) land in the
graph: the converter refuses them, or, when they convert, they act on every
frame. The endpoint here is ``model(x, training=False)``: augmentation layers
pass their input through (RandomCrop centre-crops to its size), Dropout and
GaussianNoise are the identity. :func:`verify_export` then runs the exported
graph and ``model(x, training=False)`` on the same inputs and refuses an
export whose outputs differ (e.g. a layer called with ``training=True`` in
the functional graph, which no flag can switch off).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from edgepose.errors import ConversionError, ModelError

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

# Keras layers that act only when training (identity, or a deterministic resize/crop
# for RandomCrop, with training=False). Every Keras 3 "Random*" layer is one too.
TRAINING_ONLY_LAYERS = frozenset({
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
    "GaussianDropout", "GaussianNoise", "ActivityRegularization", "AugMix", "RandAugment",
    "CutMix", "MixUp", "Solarization"})

# Exported vs Keras outputs: the same float32 graph, so only op-order round-off
# (oneDNN vs eager kernels) is allowed; an acting augmentation moves outputs by far more.
EXPORT_ATOL = 1e-4
EXPORT_RTOL = 1e-3


def keras_file_version(path: Path) -> str | None:
    """The Keras version recorded in a ``.keras`` archive (None when absent)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("metadata.json")).get("keras_version")
    except (KeyError, ValueError, zipfile.BadZipFile, OSError):
        return None


def load_keras_model(path: str | Path):
    """Load a ``.keras`` (or legacy ``.h5``) model; any problem is a one-line ModelError.

    Raises:
        ModelError: the file is missing, not a ``.keras`` zip or ``.h5`` file, a zip without
            config.json, or Keras cannot load it (the message names the Keras version).
    """
    from edgepose.keras_quiet import keras

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
    """A convertible classifier has exactly one input and one output with known shapes.

    Raises:
        ModelError: no inputs/outputs (an unbuilt Sequential), not exactly one input and one output,
            or an input with unknown dimensions.
    """
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


def is_training_only(layer) -> bool:
    """True for a layer that acts only in training (a Keras 3 ``Random*`` layer, Dropout...)."""
    kind = layer.__class__.__name__
    return kind.startswith("Random") or kind in TRAINING_ONLY_LAYERS


def training_only_layers(model) -> list[str]:
    """Names of the layers (nested models included) that act only in training.

    Used to report what inference-mode export bypasses; the export itself does not
    depend on this list (it calls the model with ``training=False``).
    """
    found: list[str] = []
    for layer in getattr(model, "layers", []):
        if is_training_only(layer):
            found.append(layer.name)
        if getattr(layer, "layers", None):
            found += training_only_layers(layer)
    return found


def probe_inputs(model, samples: np.ndarray | None = None, count: int = 4,
                 seed: int = 0) -> np.ndarray:
    """Inputs for :func:`verify_export`: up to ``count`` of ``samples`` (real data), else
    seeded uniform noise over 0..255 in the model's input shape (N x input shape, float32)."""
    if samples is not None and len(samples):
        return np.asarray(samples[:count], dtype=np.float32)
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 255.0, (count, *input_shape(model))).astype(np.float32)


def inference_outputs(model, x: np.ndarray) -> np.ndarray:
    """``model(x, training=False)`` one sample at a time (the export has a batch of one)."""
    return np.concatenate([np.asarray(model(x[i:i + 1], training=False), dtype=np.float32)
                           for i in range(len(x))])


def verify_export(model, saved_model_dir: str | Path, x: np.ndarray,
                  source: str | Path | None = None) -> float:
    """Run the exported SavedModel and ``model(x, training=False)`` on ``x``; return the
    largest absolute difference.

    Raises ConversionError when ``model(x, training=False)`` itself is not repeatable
    (a custom layer that ignores the training flag), or when the two differ beyond
    ``EXPORT_ATOL + EXPORT_RTOL * |ref|``, naming the training-only layers that may be acting.
    """
    from edgepose.keras_quiet import tf

    serve = tf.saved_model.load(str(saved_model_dir)).signatures["serving_default"]
    exported = np.concatenate([
        np.asarray(next(iter(serve(input=tf.constant(x[i:i + 1])).values())), dtype=np.float32)
        for i in range(len(x))])
    reference = inference_outputs(model, x)
    if not np.allclose(inference_outputs(model, x), reference, rtol=EXPORT_RTOL,
                       atol=EXPORT_ATOL, equal_nan=True):
        raise ConversionError("model(x, training=False) gives different outputs for the same "
                              "inputs: a layer draws random numbers at inference", source)
    if exported.shape != reference.shape:
        raise ConversionError(f"exported model outputs shape {exported.shape[1:]}, the Keras "
                              f"model (training=False) {reference.shape[1:]}", source)
    diff = float(np.max(np.abs(exported - reference))) if exported.size else 0.0
    if not np.all(np.isfinite(exported)) or not np.allclose(
            exported, reference, rtol=EXPORT_RTOL, atol=EXPORT_ATOL):
        layers = training_only_layers(model)
        hint = (f"; training-only layers {', '.join(layers)} may be called with training=True"
                if layers else "")
        raise ConversionError(f"the exported graph differs from model(x, training=False) by up "
                              f"to {diff:.3g} on {len(x)} inputs{hint}", source)
    return diff


def export_saved_model(model, out_dir: str | Path, samples: np.ndarray | None = None,
                       source: str | Path | None = None) -> Path:
    """Export ``model(x, training=False)`` with batch size 1 as a SavedModel in ``out_dir``,
    then check it against Keras on ``samples`` (see :func:`probe_inputs`).

    Augmentation and other training-only layers are bypassed (module docstring);
    raises ConversionError when the exported graph does not reproduce the model.
    """
    from edgepose.keras_quiet import keras, tf

    out_dir = Path(out_dir)
    signature = [tf.TensorSpec((1, *input_shape(model)), tf.float32, name="input")]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda x: model(x, training=False),
                         input_signature=signature)
    archive.write_out(str(out_dir), verbose=False)
    verify_export(model, out_dir, probe_inputs(model, samples), source)
    return out_dir
