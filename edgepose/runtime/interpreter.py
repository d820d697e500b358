"""Find a TFLite interpreter and load a model with it.

Order: ``ai_edge_litert`` (the maintained package), then ``tflite_runtime``
(its predecessor, last release 2.14), then ``tensorflow.lite`` (only if a
full TensorFlow happens to be installed). The device side never needs TensorFlow.

Measured on this project: tflite-runtime 2.14.0 refuses models converted by
TF 2.21 with dynamic-range quantization ("Didn't find op for builtin opcode
'FULLY_CONNECTED' version '12'") and runs TF 2.21 int8 models 4-15x slower
than ai-edge-litert 2.3.0, so a load failure names the runtime to install.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepose.errors import ModelError, RuntimeNotAvailable
from edgepose.runtime.tflite_file import ModelFileInfo, read_model_info

_CANDIDATES = (
    ("ai_edge_litert", "ai_edge_litert.interpreter"),
    ("tflite_runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow.lite.python.interpreter"),
)
BACKEND_NAMES = tuple(name for name, _ in _CANDIDATES)


@dataclass(frozen=True)
class InterpreterBackend:
    """Which package provides the interpreter, and its version."""

    name: str
    version: str
    interpreter_class: Any

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


def find_backend(prefer: str | None = None) -> InterpreterBackend:
    """Return the first importable interpreter package (or ``prefer`` if given).

    Raises:
        RuntimeNotAvailable: ``prefer`` is not a known runtime, or no interpreter package is
            installed (the message says what to pip install).
    """
    if prefer is not None and prefer not in BACKEND_NAMES:
        raise RuntimeNotAvailable(f"unknown runtime {prefer!r}; expected one of "
                                  f"{', '.join(BACKEND_NAMES)}")
    candidates = [c for c in _CANDIDATES if prefer is None or c[0] == prefer]
    for package, module_name in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        try:
            version = importlib.metadata.version(package.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            version = getattr(importlib.import_module(package), "__version__", "unknown")
        return InterpreterBackend(package, version, module.Interpreter)
    wanted = (prefer or "ai-edge-litert").replace("_", "-")
    raise RuntimeNotAvailable(f"no TFLite interpreter found: pip install {wanted}")


def _make(backend: InterpreterBackend, model_path: Path, num_threads: int | None,
          use_xnnpack: bool):
    kwargs: dict[str, Any] = {"model_path": str(model_path), "num_threads": num_threads}
    if not use_xnnpack:
        resolver = importlib.import_module(backend.interpreter_class.__module__).OpResolverType
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = backend.interpreter_class(**kwargs)
    interpreter.allocate_tensors()
    return interpreter


def load_interpreter(model_path: str | Path, num_threads: int | None = None,
                     use_xnnpack: bool = True, prefer: str | None = None):
    """Load ``model_path`` and allocate its tensors.

    ``use_xnnpack=False`` selects the builtin kernels without the default
    XNNPACK delegate, for comparison. If XNNPACK refuses to prepare the graph
    the model is loaded without it and a warning says so. Returns
    ``(interpreter, backend)``. A missing, empty, truncated or non-TFLite file,
    or a model this runtime cannot run, raises :class:`ModelError` saying what to do.

    Raises:
        ModelError: ``num_threads`` < 1, a missing, empty, truncated or non-TFLite file, or a model
            this runtime cannot run.
    """
    model_path = Path(model_path)
    info = read_model_info(model_path)
    backend = find_backend(prefer)
    if num_threads is not None and num_threads < 1:
        raise ModelError(f"num_threads must be >= 1, got {num_threads}", model_path)
    try:
        return _make(backend, model_path, num_threads, use_xnnpack), backend
    except (ValueError, RuntimeError) as exc:
        message = str(exc)
    if use_xnnpack and "XNNPACK" in message and "Didn't find op" not in message:
        try:
            interpreter = _make(backend, model_path, num_threads, use_xnnpack=False)
        except (ValueError, RuntimeError) as exc:
            message = str(exc)
        else:
            warnings.warn(f"{model_path}: XNNPACK could not prepare this model "
                          f"({_first_line(message)}); running on the builtin kernels",
                          RuntimeWarning, stacklevel=2)
            return interpreter, backend
    raise ModelError(explain_load_failure(message, backend, info), model_path)


def _first_line(message: str) -> str:
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def explain_load_failure(message: str, backend: InterpreterBackend,
                         info: ModelFileInfo | None = None) -> str:
    """Turn an interpreter's registration/flatbuffer error into advice for the user."""
    first = _first_line(message)
    op = re.search(r"Didn't find op for (?:builtin|custom) opcode '([^']+)' version '(\d+)'",
                   message)
    if op is not None:
        made_by = (f"TensorFlow {info.converter_version}" if info and info.converter_version
                   else "a newer TensorFlow")
        return (f"{backend} cannot run this model: it has no kernel for op {op.group(1)} "
                f"version {op.group(2)}. The model was converted by {made_by}; run it with a "
                f"runtime at least that new: pip install -U 'ai-edge-litert>=2.0' "
                f"(tflite-runtime stopped at 2.14)")
    if "custom op" in message.lower() or "Encountered unresolved custom op" in message:
        return f"{backend} cannot run this model, it needs a custom op ({first})"
    if "not a valid Flatbuffer" in message or "Model provided has model identifier" in message:
        return f"not a valid .tflite file ({first})"
    return f"cannot load model with {backend}: {first}"
