"""A classifier built from a ``.tflite`` file and (optionally) its manifest.

The one object the Pi uses: quantize the input if the model wants integers,
invoke, dequantize the output, softmax only when the model emits logits, and
return the top-k labels with scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from edgepose.errors import DataError, ModelError
from edgepose.runtime.interpreter import InterpreterBackend, load_interpreter
from edgepose.runtime.manifest import Manifest
from edgepose.runtime.preprocess import ImagePreprocessing, image_to_array
from edgepose.runtime.quantization import dequantize, quantize


class Classification(NamedTuple):
    """One ranked answer."""

    index: int
    label: str
    score: float


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def read_labels(path: str | Path) -> list[str]:
    """One label per line; blank lines ignored."""
    path = Path(path)
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]
    except FileNotFoundError:
        raise DataError("labels file not found", path) from None


class Classifier:
    """Run a classification ``.tflite`` model on single samples.

    Build with :meth:`from_file`. ``manifest`` is None for a third-party model,
    in which case labels are ``"0".."N-1"`` unless a labels file is given.
    """

    def __init__(self, interpreter, backend: InterpreterBackend, model_path: Path,
                 manifest: Manifest | None, labels: list[str]):
        self.interpreter = interpreter
        self.backend = backend
        self.model_path = model_path
        self.manifest = manifest
        self._input = interpreter.get_input_details()[0]
        self._output = interpreter.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self._input["shape"])
        self.input_dtype = np.dtype(self._input["dtype"])
        self.num_classes = int(np.prod(self._output["shape"][1:]))
        if not labels:
            labels = [str(i) for i in range(self.num_classes)]
        if len(labels) != self.num_classes:
            raise ModelError(f"model has {self.num_classes} outputs but {len(labels)} labels",
                             model_path)
        self.labels = labels
        self.outputs_logits = manifest is not None and manifest.output_kind == "logits"
        self._input_buffer = np.zeros(self.input_shape, dtype=self.input_dtype)
        self.preprocessing: ImagePreprocessing | None = None
        if manifest is not None and manifest.preprocessing:
            self.preprocessing = ImagePreprocessing.from_dict(manifest.preprocessing)
        elif len(self.input_shape) == 4 and self.input_shape[-1] == 3:
            self.preprocessing = ImagePreprocessing(self.input_shape[1], self.input_shape[2])
        self._image_buffer = (np.zeros((self.preprocessing.height, self.preprocessing.width, 3),
                                       dtype=np.uint8) if self.preprocessing else None)

    @classmethod
    def from_file(cls, model_path: str | Path, manifest_path: str | Path | None = None,
                  labels_path: str | Path | None = None, num_threads: int | None = None,
                  use_xnnpack: bool = True) -> Classifier:
        """Load a model; its manifest is found next to it (``model_x.json``) when present."""
        model_path = Path(model_path)
        manifest_path = Path(manifest_path) if manifest_path else Manifest.path_for(model_path)
        manifest = Manifest.load(manifest_path) if manifest_path.is_file() else None
        labels = read_labels(labels_path) if labels_path else (manifest.labels if manifest else [])
        interpreter, backend = load_interpreter(model_path, num_threads, use_xnnpack)
        return cls(interpreter, backend, model_path, manifest, labels)

    @property
    def task(self) -> str:
        if self.manifest is not None:
            return self.manifest.task
        return "image" if self.preprocessing is not None else "unknown"

    def set_input(self, sample: np.ndarray) -> None:
        """Write one sample (real values, without the batch axis) into the input tensor."""
        sample = np.asarray(sample)
        if sample.shape != self.input_shape[1:]:
            raise DataError(f"input has shape {sample.shape}, model expects "
                            f"{self.input_shape[1:]}")
        quantize(sample, self._input, out=self._input_buffer[0])
        self.interpreter.set_tensor(self._input["index"], self._input_buffer)

    def invoke(self) -> None:
        self.interpreter.invoke()

    def scores(self) -> np.ndarray:
        """Class probabilities of the last invoke, float32, summing to ~1."""
        raw = self.interpreter.get_tensor(self._output["index"])
        values = dequantize(raw, self._output).reshape(-1)
        return softmax(values) if self.outputs_logits else values

    def predict(self, sample: np.ndarray) -> np.ndarray:
        """Probabilities for one preprocessed sample (image uint8 HxWx3 or keypoint vector)."""
        self.set_input(sample)
        self.invoke()
        return self.scores()

    def prepare_image(self, image) -> np.ndarray:
        """Path, PIL image or array -> the model's uint8 input array (reused buffer)."""
        if self.preprocessing is None:
            raise DataError("this model does not take images")
        return image_to_array(image, self.preprocessing, out=self._image_buffer)

    def top_k(self, probabilities: np.ndarray, k: int = 3) -> list[Classification]:
        order = np.argsort(-probabilities, kind="stable")[:k]
        return [Classification(int(i), self.labels[i], float(probabilities[i])) for i in order]

    def classify_image(self, image, k: int = 3) -> list[Classification]:
        """Top-k labels for one image (path, PIL image or array)."""
        return self.top_k(self.predict(self.prepare_image(image)), k)
