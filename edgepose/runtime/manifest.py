"""The manifest that travels with every converted model (``model_<mode>.json``).

A ``.tflite`` file plus its manifest is all the device needs: labels, the task,
how to preprocess an input, and where the model came from. The converter
writes it (:meth:`Manifest.save`), the runtime reads it (:meth:`Manifest.load`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgepose.errors import ConfigError, ModelError
from edgepose.fileio import read_json, write_json
from edgepose.runtime.input_contract import InputContract

# 2: input_contract added. A version-1 manifest was written only for models edgepose
# trained, which take raw RGB 0..255 (rescaling inside the graph).
MANIFEST_VERSION = 2


@dataclass
class TensorSpec:
    """Shape, dtype and (for integer tensors) the affine quantization of one tensor."""

    shape: list[int]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None


@dataclass
class Manifest:
    """Everything the device needs to know about a converted model."""

    task: str  # "image" or "keypoints"
    labels: list[str]
    mode: str  # fp32 | fp16 | dynamic | int8 | int16x8 | int8-fallback
    input: TensorSpec
    output: TensorSpec
    output_kind: str = "probabilities"  # or "logits": the runtime applies softmax only then
    preprocessing: dict[str, Any] | None = None  # ImagePreprocessing.to_dict() for images
    keypoint_layout: str | None = None
    source_model: str | None = None
    source_sha256: str | None = None
    versions: dict[str, str] = field(default_factory=dict)  # tensorflow, keras, edgepose
    settings: dict[str, Any] = field(default_factory=dict)  # converter flags, calibration
    manifest_version: int = MANIFEST_VERSION
    input_contract: dict[str, Any] | None = None  # InputContract.to_dict()

    def contract(self, path: str | Path | None = None) -> InputContract:
        """The input contract this manifest states (raw 0..255 for a version-1 image manifest).

        Raises:
            ModelError: a malformed ``input_contract``, naming ``path``.
        """
        where = f"the manifest {Path(path).name}" if path else "the manifest"
        if self.input_contract is not None:
            try:
                return InputContract.from_dict(self.input_contract, where)
            except ConfigError as exc:
                raise ModelError(exc.message, path) from None
        if self.task == "image":
            return InputContract.raw(f"{where} (version {self.manifest_version}: raw 0..255)",
                                     dtype=self.input.dtype)
        return InputContract.features(self.input.dtype, where)

    def save(self, path: str | Path) -> Path:
        """Write the manifest atomically as JSON."""
        return write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read a manifest; a missing field or a malformed file raises ModelError.

        Raises:
            DataError: the file is missing or not JSON.
            ModelError: a missing field or a malformed value.
        """
        data = read_json(path)
        try:
            data = dict(data)
            data["input"] = TensorSpec(**data["input"])
            data["output"] = TensorSpec(**data["output"])
            return cls(**data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"not an edgepose manifest ({exc})", path) from None

    @staticmethod
    def path_for(model_path: str | Path) -> Path:
        """``model_int8.tflite`` -> ``model_int8.json``."""
        return Path(model_path).with_suffix(".json")
