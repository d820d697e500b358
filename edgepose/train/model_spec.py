"""Which backbones the image trainer knows: a registry of data, not a chain of if/elif.

Every exported model takes raw RGB 0..255 (float32); the backbone's own
normalisation is part of the graph:

- ``mobilenet_v2``: Keras builds it without preprocessing, so edgepose puts a
  ``Rescaling(1/127.5, offset=-1)`` layer (named ``preprocess``) in front: x/127.5 - 1.
- ``mobilenet_v3_small`` / ``mobilenet_v3_large``: built with
  ``include_preprocessing=True``, which adds the same x/127.5 - 1 ``Rescaling``
  layer inside the backbone (checked against keras.applications 3.x source).
- ``efficientnet_b0``: always contains ``Rescaling(1/255)`` + ``Normalization``.
  With ``weights="imagenet"`` Keras loads the ImageNet mean/variance and adds one
  more ``Rescaling`` (its stored variance is the std, see keras issue 49930).
  For any other weights edgepose sets the Normalization layer itself to the
  ImageNet mean and std**2, so the input is (x/255 - mean)/std either way.

This module does not import TensorFlow; :meth:`BackboneSpec.build` does.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from edgepose.errors import ConfigError

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone: how to build it, which inputs it accepts, how it normalises."""

    name: str
    constructor: str  # dotted path, resolved only when building
    min_size: int
    max_size: int
    default_size: int
    preprocessing: str  # what the graph does to raw RGB, for reports and config.json
    rescale: tuple[float, float] | None = None  # (scale, offset) layer edgepose adds in front
    alphas: tuple[float, ...] = ()  # allowed width multipliers; empty: no alpha argument
    default_alpha: float | None = None
    imagenet_alphas: tuple[float, ...] = ()
    imagenet_sizes: tuple[int, ...] = ()  # sizes with their own ImageNet weights
    kwargs: dict[str, Any] = field(default_factory=dict)
    imagenet_normalization: bool = False  # set Normalization stats when not from imagenet

    def check(self, input_size: int, alpha: float | None) -> float | None:
        """Validate ``input_size`` and ``alpha``; return the alpha to use.

        Raises:
            ConfigError: ``input_size`` out of range, or an ``alpha`` the backbone does not have.
        """
        if not self.min_size <= input_size <= self.max_size:
            raise ConfigError(f"input size {input_size} is outside the range of {self.name} "
                              f"({self.min_size}..{self.max_size})")
        if not self.alphas:
            if alpha is not None and alpha != 1.0:
                raise ConfigError(f"{self.name} has no width multiplier (--alpha)")
            return None
        alpha = self.default_alpha if alpha is None else float(alpha)
        if alpha not in self.alphas:
            raise ConfigError(f"alpha {alpha} is not available for {self.name}; "
                              f"choose one of {', '.join(str(a) for a in self.alphas)}")
        return alpha

    def build(self, input_size: int, alpha: float | None, weights: str | None):
        """The headless Keras backbone (global-average pooled), ``weights`` None or 'imagenet'."""
        module_name, attribute = self.constructor.rsplit(".", 1)
        constructor = getattr(importlib.import_module(module_name), attribute)
        kwargs = dict(self.kwargs)
        if self.alphas:
            kwargs["alpha"] = alpha
        model = constructor(input_shape=(input_size, input_size, 3), include_top=False,
                            weights=weights, pooling="avg", **kwargs)
        if self.imagenet_normalization and weights != "imagenet":
            set_imagenet_normalization(model)
        return model


def set_imagenet_normalization(model) -> None:
    """Give the backbone's Normalization layer the ImageNet mean and variance."""
    import numpy as np

    for layer in model.layers:
        if layer.__class__.__name__ == "Normalization":
            mean = np.array(IMAGENET_MEAN_RGB, dtype="float32")
            variance = np.square(np.array(IMAGENET_STDDEV_RGB, dtype="float32"))
            shape = [v.shape for v in layer.get_weights()]
            layer.set_weights([mean.reshape(shape[0]), variance.reshape(shape[1])]
                              + layer.get_weights()[2:])
            layer.finalize_state()  # the layer computes with mean/variance copied from these
            return


_MOBILENET_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)

BACKBONES: dict[str, BackboneSpec] = {
    "mobilenet_v2": BackboneSpec(
        name="mobilenet_v2", constructor="keras.applications.MobileNetV2",
        min_size=32, max_size=512, default_size=224,
        preprocessing="x/127.5 - 1 (Rescaling layer 'preprocess' added by edgepose)",
        rescale=(1 / 127.5, -1.0),
        alphas=_MOBILENET_V2_ALPHAS, default_alpha=1.0, imagenet_alphas=_MOBILENET_V2_ALPHAS,
        imagenet_sizes=(96, 128, 160, 192, 224)),
    "mobilenet_v3_small": BackboneSpec(
        name="mobilenet_v3_small", constructor="keras.applications.MobileNetV3Small",
        min_size=32, max_size=512, default_size=224,
        preprocessing="x/127.5 - 1 (Keras include_preprocessing=True Rescaling)",
        alphas=(0.75, 1.0), default_alpha=1.0, imagenet_alphas=(0.75, 1.0),
        imagenet_sizes=(224,), kwargs={"include_preprocessing": True}),
    "mobilenet_v3_large": BackboneSpec(
        name="mobilenet_v3_large", constructor="keras.applications.MobileNetV3Large",
        min_size=32, max_size=512, default_size=224,
        preprocessing="x/127.5 - 1 (Keras include_preprocessing=True Rescaling)",
        alphas=(0.75, 1.0), default_alpha=1.0, imagenet_alphas=(0.75, 1.0),
        imagenet_sizes=(224,), kwargs={"include_preprocessing": True}),
    "efficientnet_b0": BackboneSpec(
        name="efficientnet_b0", constructor="keras.applications.EfficientNetB0",
        min_size=32, max_size=600, default_size=224,
        preprocessing="(x/255 - ImageNet mean) / ImageNet std (Keras Rescaling+Normalization)",
        imagenet_sizes=(224,), imagenet_normalization=True),
}


def get_backbone(name: str) -> BackboneSpec:
    """The registered backbone called ``name`` (ConfigError listing the choices otherwise).

    Raises:
        ConfigError: an unknown ``name`` (the message lists the choices).
    """
    try:
        return BACKBONES[name]
    except KeyError:
        raise ConfigError(f"unknown backbone {name!r}; choose one of "
                          f"{', '.join(sorted(BACKBONES))}") from None
