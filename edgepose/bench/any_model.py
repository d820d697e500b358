"""Time any ``.tflite`` model, classifier or not, like TFLite's ``benchmark_model``.

A pose-landmark or hand-landmark model has several inputs or outputs that are
not class scores; ``edgepose bench`` still times it: every input is filled with
seeded random values of its dtype (or with a given ``.npy`` array), the graph
is invoked, and every input and output is listed with its name, shape, dtype
and quantization. Accuracy needs a classifier and labelled data, so it is
never computed here.

Device side: the raw interpreter of :func:`edgepose.runtime.interpreter.load_interpreter`,
no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepose.errors import DataError
from edgepose.runtime.classifier import invoke_checked
from edgepose.runtime.interpreter import InterpreterBackend, load_interpreter


@dataclass
class TensorInfo:
    """One input or output tensor as the interpreter reports it.

    ``shape`` is the allocated shape, ``signature`` the one stored in the model
    (``-1`` marks a dynamic dimension). ``scale``/``zero_point`` are the per-tensor
    quantization (None for a float tensor); ``per_channel`` is the number of
    channel scales when the tensor is quantized per channel.
    """

    role: str  # "input" or "output"
    index: int  # position among the model's inputs or outputs
    name: str
    shape: list[int]
    signature: list[int]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None
    per_channel: int | None = None

    def describe(self) -> str:
        """``"input 0 'image' [1, 256, 256, 3] float32"`` with quantization when present."""
        text = f"{self.role} {self.index} {self.name!r} {self.shape} {self.dtype}"
        if self.signature != self.shape:
            text += f" (stored as {self.signature})"
        if self.per_channel:
            text += f", quantized per channel ({self.per_channel} scales)"
        elif self.scale is not None:
            text += f", scale {self.scale:.6g} zero point {self.zero_point}"
        return text


def tensor_info(detail: Mapping, role: str, index: int) -> TensorInfo:
    """A :class:`TensorInfo` from one ``get_input_details()``/``get_output_details()`` entry."""
    params = detail.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []))
    scale, zero_point = detail.get("quantization", (0.0, 0))
    info = TensorInfo(role, index, str(detail["name"]), [int(d) for d in detail["shape"]],
                      [int(d) for d in detail.get("shape_signature", detail["shape"])],
                      np.dtype(detail["dtype"]).name)
    if scales.size > 1:
        info.per_channel = int(scales.size)
    elif scale:
        info.scale, info.zero_point = float(scale), int(zero_point)
    return info


def list_tensors(interpreter) -> list[TensorInfo]:
    """Every input then every output of an allocated interpreter."""
    return ([tensor_info(d, "input", i) for i, d in enumerate(interpreter.get_input_details())]
            + [tensor_info(d, "output", i)
               for i, d in enumerate(interpreter.get_output_details())])


def random_input(detail: Mapping, rng: np.random.Generator) -> np.ndarray:
    """Seeded random values of the tensor's shape and dtype.

    Integer tensors (quantized or not) get uniform values over their whole range
    (int32/int64 over 0..255, so an index-like input stays small); float tensors
    standard normal values; bool tensors fair coin flips.
    """
    shape = tuple(int(d) for d in detail["shape"])
    dtype = np.dtype(detail["dtype"])
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = (0, 256) if dtype.itemsize >= 4 else (int(info.min), int(info.max) + 1)
        return rng.integers(low, high, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


class AnyModel:
    """A loaded ``.tflite`` with inputs set once, to invoke and time.

    ``given`` maps an input name or index (as text) to a ``.npy`` file; every
    other input is random (:func:`random_input` with ``seed``). A dynamic
    dimension (``-1`` in the stored shape) is resized to the given array's
    size, or to 1 when random (one sample, like ``benchmark_model``'s default).
    Raises :class:`DataError` for a given array of the wrong shape or dtype or
    an unknown input name, :class:`ModelError` when the graph fails to run.
    """

    def __init__(self, model_path: str | Path, num_threads: int | None = None,
                 use_xnnpack: bool = True, given: Mapping[str, str | Path] | None = None,
                 seed: int = 0, prefer: str | None = None):
        self.model_path = Path(model_path)
        self.use_xnnpack = use_xnnpack
        interpreter, backend = load_interpreter(self.model_path, num_threads, use_xnnpack,
                                                prefer)
        self.interpreter = interpreter
        self.backend: InterpreterBackend = backend
        details = interpreter.get_input_details()
        arrays = _given_arrays(details, given or {}, self.model_path)
        if _resize(interpreter, details, arrays):
            interpreter.allocate_tensors()
            details = interpreter.get_input_details()
        rng = np.random.default_rng(seed)
        self.inputs = []
        for i, detail in enumerate(details):
            array = arrays.get(i)
            if array is None:
                array = random_input(detail, rng)
            elif array.dtype != np.dtype(detail["dtype"]):
                raise DataError(f"input {i} {detail['name']!r} is {np.dtype(detail['dtype'])}, "
                                f"the array is {array.dtype}", self.model_path)
            self.inputs.append((int(detail["index"]), array))
        self.tensors = list_tensors(interpreter)

    def set_inputs(self) -> None:
        """Copy every input array into its tensor."""
        for index, array in self.inputs:
            self.interpreter.set_tensor(index, array)

    def invoke(self) -> None:
        """Run the graph; a kernel failure becomes a one-line :class:`ModelError`."""
        invoke_checked(self.interpreter, self.model_path)

    def run(self) -> list[np.ndarray]:
        """Set the inputs, invoke, and copy every output (the end-to-end path of this mode)."""
        self.set_inputs()
        self.invoke()
        return [self.interpreter.get_tensor(d["index"]).copy()
                for d in self.interpreter.get_output_details()]


def _given_arrays(details: list, given: Mapping[str, str | Path], model_path: Path
                  ) -> dict[int, np.ndarray]:
    """Load ``--input NAME=FILE.npy`` arrays, keyed by input position."""
    by_name = {str(d["name"]): i for i, d in enumerate(details)}
    arrays = {}
    for key, file in given.items():
        position = by_name.get(key)
        if position is None and key.isdigit() and int(key) < len(details):
            position = int(key)
        if position is None:
            raise DataError(f"no input named {key!r}; inputs are "
                            f"{', '.join(repr(n) for n in by_name)}", model_path)
        try:
            arrays[position] = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"not a readable .npy array ({exc})", file) from None
    return arrays


def _resize(interpreter, details: list, arrays: dict[int, np.ndarray]) -> bool:
    """Resize inputs to the given arrays / dynamic dimensions to 1; True when anything changed."""
    changed = False
    for i, detail in enumerate(details):
        signature = [int(d) for d in detail.get("shape_signature", detail["shape"])]
        current = [int(d) for d in detail["shape"]]
        array = arrays.get(i)
        if array is not None:
            wanted = list(array.shape)
            fits = len(wanted) == len(signature) and all(
                s in (-1, w) for s, w in zip(signature, wanted, strict=True))
            if not fits:
                raise DataError(f"input {i} {detail['name']!r} has shape {signature} (-1 = any), "
                                f"the array has {wanted}")
        else:
            wanted = [1 if s == -1 else s for s in signature]
        if wanted != current:
            interpreter.resize_tensor_input(int(detail["index"]), wanted)
            changed = True
    return changed
