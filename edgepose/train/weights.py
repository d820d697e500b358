"""Backbone weights: ImageNet through Keras's cache, or a local file matched by layer name.

``--weights imagenet`` uses Keras's normal download into ``~/.keras/models``;
offline that fails, and :func:`build_backbone` says how to fix it in one line.
``--weights PATH`` takes

- a ``.weights.h5`` saved from the same backbone (``backbone.save_weights``),
  loaded as a whole; or
- a ``.h5`` or ``.keras`` model file that contains the backbone somewhere
  (possibly nested), loaded layer by layer where names and shapes agree.

Preprocessing layers (Rescaling, Normalization) are never taken from a file:
the registry owns the input normalisation (see :mod:`edgepose.train.model_spec`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.errors import ModelError
from edgepose.train.model_spec import BackboneSpec

_PREPROCESSING_LAYERS = ("Rescaling", "Normalization")


@dataclass
class WeightsReport:
    """Where the backbone's weights came from and how many layers they filled."""

    source: str  # imagenet | none | the file path
    loaded_layers: int = 0
    weighted_layers: int = 0  # backbone layers that have weights at all
    mismatched: list[str] = field(default_factory=list)  # same name, other shapes

    def summary(self) -> str:
        if self.source in ("imagenet", "none"):
            return f"weights: {self.source}"
        return (f"weights: {self.loaded_layers}/{self.weighted_layers} backbone layers loaded "
                f"from {self.source}")


def build_backbone(spec: BackboneSpec, input_size: int, alpha: float | None, weights: str):
    """Build the headless backbone and fill its weights; return ``(backbone, WeightsReport)``.

    Raises:
        ModelError: no ImageNet weights for this ``alpha``, they cannot be downloaded, or a weights
            file does not fit.
    """
    choice = weights.lower()
    if choice == "none":
        backbone = spec.build(input_size, alpha, None)
        return backbone, WeightsReport("none", weighted_layers=_count_weighted(backbone))
    if choice == "imagenet":
        if spec.imagenet_alphas and alpha not in spec.imagenet_alphas:
            raise ModelError(f"{spec.name} has no ImageNet weights for alpha {alpha} "
                             f"(available: {', '.join(str(a) for a in spec.imagenet_alphas)}); "
                             "pass another --alpha or --weights none")
        try:
            backbone = spec.build(input_size, alpha, "imagenet")
        except Exception as exc:  # Keras raises a bare Exception on URL fetch failure
            reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            raise ModelError(
                f"could not get ImageNet weights for {spec.name} ({reason[:160]}); offline, "
                f"copy the Keras weight file into ~/.keras/models/, or pass --weights PATH "
                f"(.weights.h5/.h5/.keras) or --weights none") from None
        return backbone, WeightsReport("imagenet", weighted_layers=_count_weighted(backbone))
    backbone = spec.build(input_size, alpha, None)
    return backbone, load_backbone_weights(backbone, weights)


def load_backbone_weights(backbone, path: str | Path) -> WeightsReport:
    """Fill ``backbone`` from a ``.weights.h5``, ``.h5`` or ``.keras`` file.

    Raises:
        ModelError: the file is missing or of another kind, no layer name in common, layers with the
            right names but other shapes, or weights Keras cannot load.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError("weights file not found (--weights takes imagenet, none or a file)",
                         path)
    name = path.name.lower()
    report = WeightsReport(str(path), weighted_layers=_count_weighted(backbone))
    if name.endswith(".weights.h5"):
        try:
            backbone.load_weights(str(path))
        except Exception as exc:
            raise ModelError(f"weights do not fit the {backbone.name} backbone "
                             f"({str(exc).splitlines()[0][:200]})", path) from None
        report.loaded_layers = report.weighted_layers
        return report
    if name.endswith(".h5") or name.endswith(".hdf5"):
        source = _h5_layer_weights(path)
    elif name.endswith(".keras"):
        source = _keras_layer_weights(path)
    else:
        raise ModelError("expected a .weights.h5, .h5 or .keras file", path)
    for layer in _weighted_layers(backbone):
        arrays = source.get(layer.name)
        if arrays is None:
            continue
        expected = [tuple(w.shape) for w in layer.weights]
        if [tuple(a.shape) for a in arrays] != expected:
            report.mismatched.append(layer.name)
            continue
        layer.set_weights(arrays)
        report.loaded_layers += 1
    if report.mismatched:
        raise ModelError(f"{len(report.mismatched)} {backbone.name} layers have the right names "
                         f"but other shapes (e.g. {report.mismatched[0]}): check --backbone "
                         "and --alpha", path)
    if report.loaded_layers == 0:
        raise ModelError(f"no layer of {backbone.name} found in the file (no layer names in "
                         "common)", path)
    return report


def _weighted_layers(model):
    return [layer for layer in model.layers
            if layer.weights and layer.__class__.__name__ not in _PREPROCESSING_LAYERS]


def _count_weighted(model) -> int:
    return len(_weighted_layers(model))


def _h5_layer_weights(path: Path) -> dict[str, list[np.ndarray]]:
    """``{layer name: [arrays in layer order]}`` from a Keras (2 or 3) legacy H5 model file.

    Every group with a ``weight_names`` attribute lists ``<layer>/<var>`` names,
    in the layer's weight order, even for models nested inside the file's model.
    """
    import h5py

    out: dict[str, list[np.ndarray]] = {}
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f

            def visit(_name, obj):
                if isinstance(obj, h5py.Group) and "weight_names" in obj.attrs:
                    for weight_name in obj.attrs["weight_names"]:
                        weight_name = (weight_name.decode() if isinstance(weight_name, bytes)
                                       else str(weight_name))
                        parts = weight_name.split("/")
                        layer = parts[-2] if len(parts) > 1 else obj.name.split("/")[-1]
                        out.setdefault(layer, []).append(np.asarray(obj[weight_name]))

            root.visititems(visit)
    except OSError as exc:
        raise ModelError(f"not a readable HDF5 file ({exc})", path) from None
    if not out:
        raise ModelError("no layer weights found (expected a Keras .h5 model file)", path)
    return out


def _keras_layer_weights(path: Path) -> dict[str, list[np.ndarray]]:
    """``{layer name: arrays}`` for every layer, nested ones too, of a ``.keras`` model."""
    from edgepose.keras_quiet import keras

    try:
        model = keras.saving.load_model(str(path), compile=False)
    except Exception as exc:
        raise ModelError(f"could not load the Keras model ({str(exc).splitlines()[0][:200]})",
                         path) from None
    out: dict[str, list[np.ndarray]] = {}
    stack = [model]
    while stack:
        layer = stack.pop()
        sub = getattr(layer, "layers", None)
        if sub:
            stack.extend(sub)
        elif layer.weights:
            out.setdefault(layer.name, layer.get_weights())
    return out
