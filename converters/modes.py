"""The conversion modes, as data: one entry per ``edgepose convert`` flag.

Each mode says what the TFLite converter must be told; :mod:`edgepose.converters.tflite`
turns a :class:`Mode` into converter settings in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgepose.errors import ConfigError


@dataclass(frozen=True)
class Mode:
    """How one kind of TFLite model is produced."""

    name: str
    summary: str
    optimize: bool = False  # tf.lite.Optimize.DEFAULT (quantize weights at least)
    calibrated: bool = False  # needs a representative dataset
    full_integer: bool = False  # every op integer; input/output integer unless io="float"
    float16_weights: bool = False
    int16_activations: bool = False


MODES: dict[str, Mode] = {
    "fp32": Mode("fp32", "float32 weights and activations"),
    "fp16": Mode("fp16", "float16 weights, float32 compute", optimize=True,
                 float16_weights=True),
    "dynamic": Mode("dynamic", "int8 weights, float activations (dynamic range)",
                    optimize=True),
    "int8": Mode("int8", "full integer: int8 weights and activations, calibrated",
                 optimize=True, calibrated=True, full_integer=True),
    "int16x8": Mode("int16x8", "int16 activations, int8 weights, calibrated",
                    optimize=True, calibrated=True, full_integer=True,
                    int16_activations=True),
}

# `edgepose convert` without a mode flag: everything but the slow, niche int16x8.
DEFAULT_MODES = ("fp32", "fp16", "dynamic", "int8")

FALLBACK_MODE = "int8-fallback"

IO_TYPES = ("int8", "uint8", "float")


def get_mode(name: str) -> Mode:
    """Look a mode up by name; an unknown name raises :class:`ConfigError` listing them.

    Raises:
        ConfigError: an unknown ``name`` (the message lists the modes).
    """
    try:
        return MODES[name]
    except KeyError:
        raise ConfigError(f"unknown conversion mode {name!r}; expected one of "
                          f"{', '.join(MODES)}") from None
