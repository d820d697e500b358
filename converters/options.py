"""``ConvertOptions``: how ``edgepose convert`` converts, as one validated object.

One field per ``edgepose convert`` option (the CLI flag is the field name with
dashes, ``auto_fallback`` is ``--auto-fallback``), checked once by
:meth:`ConvertOptions.validate` before any work starts. Device-safe to import
(no TensorFlow): the CLI builds it before loading anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgepose.converters.modes import IO_TYPES, get_mode
from edgepose.converters.target import require_target
from edgepose.converters.tflite import COMPAT_TARGETS
from edgepose.errors import ConfigError
from edgepose.runtime.input_contract import StatedContract

HARDSWISH_REWRITE = ("auto", "on", "off")


@dataclass(frozen=True)
class ConvertOptions:
    """The settings of one conversion (defaults are the CLI's).

    ``io``: input/output type of full-integer modes (see :data:`IO_TYPES`);
    ``compat``: restrict ops to an older runtime; ``calib_samples``: calibration
    sample count (stratified, ``seed``-ed), from ``calib_data`` (a class-folder
    directory or ``.npy``) or else the run's train split; ``max_drop``: accuracy
    budget in percentage points on the test split; ``debug_layers``: per-layer
    quantization errors and ``quant_debug.png``; ``auto_fallback``: keep layers
    float until int8 fits ``max_drop``; ``hardswish_rewrite``: auto/on/off;
    ``stated``: the user's input contract for a bare model; ``eval_data``: a folder of
    class folders of held-out data to measure accuracy and drift on (instead of the test
    split; a bare model has none); ``allow_one_class``: accept calibration data with one
    class folder for a model with several classes; ``target``: where "faster" is
    measured, ``host``, ``pi4`` or ``pi5`` (:mod:`edgepose.converters.target`).
    """

    io: str = "int8"
    compat: str | None = None
    calib_samples: int = 200
    calib_data: str | Path | None = None
    seed: int = 0
    max_drop: float | None = None
    debug_layers: bool = False
    auto_fallback: bool = False
    hardswish_rewrite: str = "auto"
    stated: StatedContract | None = None
    eval_data: str | Path | None = None  # held-out class folders to measure drift on
    allow_one_class: bool = False  # calibrate on one class folder of a multi-class model
    target: str = "host"

    def validate(self, modes: Sequence[str]) -> list[str]:
        """The modes to convert: deduplicated, in order, ``int8`` added for auto-fallback.

        Raises ConfigError (one line naming the option) for an unknown mode, io type,
        compat target or hard-swish setting, ``auto_fallback`` without ``max_drop``,
        or fewer than one calibration sample, and for an unknown ``target``;
        RuntimeNotAvailable for a Pi target whose emulated rig is not set up: all
        before any model is loaded.
        """
        chosen = list(dict.fromkeys(modes))
        for name in chosen:
            get_mode(name)
        if self.io not in IO_TYPES:
            raise ConfigError(f"--io must be one of {', '.join(IO_TYPES)}, not {self.io!r}")
        if self.compat is not None and self.compat not in COMPAT_TARGETS:
            raise ConfigError(f"--compat must be one of {', '.join(COMPAT_TARGETS)}, "
                              f"not {self.compat!r}")
        if self.hardswish_rewrite not in HARDSWISH_REWRITE:
            raise ConfigError("--hardswish-rewrite must be auto, on or off, "
                              f"not {self.hardswish_rewrite!r}")
        if self.auto_fallback and self.max_drop is None:
            raise ConfigError("--auto-fallback needs --max-drop (the accuracy budget to meet)")
        if self.auto_fallback and "int8" not in chosen:
            chosen.append("int8")
        if self.calib_samples < 1:
            raise ConfigError(f"--calib-samples must be at least 1, not {self.calib_samples}")
        require_target(self.target)
        return chosen
