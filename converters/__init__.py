"""Host-side TFLite converters: Keras -> TFLite per mode, calibration, drift, fallback.

Installed as ``edgepose.converters`` (the repository's top-level ``converters/``
folder, mapped by ``pyproject.toml``). ``convert_run(run_dir, modes) ->
ConversionReport`` is the entry point (:mod:`edgepose.converters.convert`); modes
are data in :mod:`edgepose.converters.modes`. Importing this package or the mode
table loads no TensorFlow: the names below are resolved on first access, and
TensorFlow is imported only where it is used (:mod:`edgepose.keras_quiet`).
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the submodule that defines it (loaded on first attribute access, PEP 562)
_LAZY = {
    "convert_run": "convert",
    "resolve_source": "convert",
    "DEFAULT_MODES": "modes",
    "MODES": "modes",
    "ConversionReport": "report",
    "ModeResult": "report",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
