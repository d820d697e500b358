"""Find a TFLite interpreter and load a model with it.

Order: ``ai_edge_litert`` (the maintained package), then ``tflite_runtime``
(its predecessor, last release 2.14), then ``tensorflow.lite`` (only if a
full TensorFlow happens to be installed). The device side never needs TensorFlow.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepose.errors import ModelError, RuntimeNotAvailable

_CANDIDATES = (
    ("ai_edge_litert", "ai_edge_litert.interpreter"),
    ("tflite_runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow.lite.python.interpreter"),
)


@dataclass(frozen=True)
class InterpreterBackend:
    """Which package provides the interpreter, and its version."""

    name: str
    version: str
    interpreter_class: Any


def find_backend(prefer: str | None = None) -> InterpreterBackend:
    """Return the first importable interpreter package (or ``prefer`` if given)."""
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
    wanted = prefer or "ai-edge-litert"
    raise RuntimeNotAvailable(f"no TFLite interpreter found: pip install {wanted}")


def load_interpreter(model_path: str | Path, num_threads: int | None = None,
                     use_xnnpack: bool = True, prefer: str | None = None):
    """Load ``model_path`` and allocate its tensors.

    ``use_xnnpack=False`` selects the builtin reference kernels without the
    default XNNPACK delegate, for comparison. Returns ``(interpreter, backend)``.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelError("model file not found", model_path)
    backend = find_backend(prefer)
    kwargs: dict[str, Any] = {"model_path": str(model_path), "num_threads": num_threads}
    if not use_xnnpack:
        resolver = importlib.import_module(backend.interpreter_class.__module__).OpResolverType
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = backend.interpreter_class(**kwargs)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(_explain_load_failure(str(exc), backend), model_path) from None
    return interpreter, backend


def _explain_load_failure(message: str, backend: InterpreterBackend) -> str:
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    if "Didn't find op for builtin opcode" in message:
        return (f"{backend.name} {backend.version} cannot run this model ({first}); it was "
                "converted by a newer TensorFlow: pip install -U ai-edge-litert, or reconvert "
                "with `edgepose convert --compat tflite-runtime`")
    if "Model provided has model identifier" in message or "flatbuffer" in message.lower():
        return f"not a valid .tflite file ({first})"
    return f"cannot load model with {backend.name} {backend.version}: {first}"
