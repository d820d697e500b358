"""Host-side TFLite converters: Keras -> TFLite per mode, calibration, drift, fallback.

Installed as ``edgepose.converters`` (the repository's top-level ``converters/``
folder, mapped by ``pyproject.toml``). ``run_conversion(source, modes,
ConvertOptions(...)) -> ConversionReport`` is the entry point
(:mod:`edgepose.converters.convert`; ``convert_run`` is its keyword form); options
are checked in :mod:`edgepose.converters.options`, the source model and its input
contract are found in :mod:`edgepose.converters.source`, modes are data in
:mod:`edgepose.converters.modes`. The steps of a conversion: ``conversion_inputs``
(Keras reference outputs, calibration set; ``held_out`` for ``--eval-data``),
``mode_steps`` (one step per mode under the one wrapper that times, writes and
measures it), ``target`` (speed on ``--target`` and the int8 candidate chosen there),
``budget`` (per-layer debugging, auto-fallback, the ``--max-drop`` check). Importing
this package or the mode table loads no TensorFlow: the names below are resolved on
first access, and TensorFlow is imported only where it is used
(:mod:`edgepose.keras_quiet`).
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the submodule that defines it (loaded on first attribute access, PEP 562)
_LAZY = {
    "run_conversion": "convert",
    "convert_run": "convert",
    "ConvertOptions": "options",
    "resolve_source": "source",
    "DEFAULT_MODES": "modes",
    "MODES": "modes",
    "ConversionReport": "conversion_report",
    "ModeResult": "conversion_report",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
