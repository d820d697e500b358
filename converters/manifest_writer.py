"""Write the manifest next to a converted model, with tensors read back from the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgepose.runtime.input_contract import InputContract
from edgepose.runtime.interpreter import load_interpreter
from edgepose.runtime.manifest import Manifest, TensorSpec
from edgepose.runtime.quantization import tensor_quantization


def tensor_spec(detail: dict) -> TensorSpec:
    """Shape, dtype and quantization of one interpreter tensor."""
    params = tensor_quantization(detail)
    return TensorSpec(shape=[int(d) for d in detail["shape"]],
                      dtype=np.dtype(detail["dtype"]).name,
                      scale=params[0] if params else None,
                      zero_point=params[1] if params else None)


def read_io_specs(model_path: str | Path) -> tuple[TensorSpec, TensorSpec]:
    """The input and output TensorSpec of a ``.tflite`` file, as the device sees them."""
    interpreter, _ = load_interpreter(model_path, num_threads=1, use_xnnpack=False)
    return (tensor_spec(interpreter.get_input_details()[0]),
            tensor_spec(interpreter.get_output_details()[0]))


def versions() -> dict[str, str]:
    """Versions of the tools that produced a model (recorded in every manifest)."""
    from edgepose import __version__
    from edgepose.keras_quiet import keras, tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "edgepose": __version__,
            "converter": "tf.lite.TFLiteConverter.from_saved_model"}


def build_manifest(model_path: str | Path, mode: str, *, task: str, labels: list[str],
                   preprocessing: dict[str, Any] | None, keypoint_layout: str | None,
                   source_model: str | Path, source_sha256: str,
                   settings: dict[str, Any], contract: InputContract | None = None,
                   output_kind: str = "probabilities") -> Manifest:
    """The manifest for one converted model (input/output read from the model itself).

    ``contract`` (the source model's input contract) is stored with the converted
    input's dtype; None stores raw 0..255 for an image model, features otherwise.
    ``output_kind``: ``"probabilities"`` or ``"logits"`` (the runtime applies softmax then),
    from :func:`~edgepose.converters.model_outputs.keras_output_kind`.
    """
    input_spec, output_spec = read_io_specs(model_path)
    if contract is None:
        contract = InputContract.raw() if task == "image" else InputContract.features()
    contract = contract.with_tensor(input_spec.dtype)
    return Manifest(task=task, labels=list(labels), mode=mode, input=input_spec,
                    output=output_spec, output_kind=output_kind,
                    preprocessing=preprocessing, keypoint_layout=keypoint_layout,
                    source_model=str(source_model), source_sha256=source_sha256,
                    versions=versions(), settings=settings,
                    input_contract=contract.to_dict())
