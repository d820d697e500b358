"""A classifier built from a ``.tflite`` file and (optionally) its manifest.

The one object the Pi uses: turn RGB pixels into the values the model wants
through its input contract (:mod:`edgepose.runtime.input_contract`: stated,
manifest, TFLite metadata or input quantization; an unstated float image model
is refused), quantize them if the model wants integers, invoke, dequantize the
output, softmax only when the model emits logits, and return the top-k labels
with scores. A model it cannot run as a classifier (several inputs, outputs that
are not class scores, a batch the graph fixes) is a one-line error
(:mod:`edgepose.runtime.model_checks`).

Labels come from, in order: an explicit labels file, the manifest
(``model_<mode>.json`` next to the model), a ``labels.txt``-style file packed
into the model by the TFLite Metadata writer, else ``"0".."N-1"``.

The hot path (:meth:`Classifier.predict` on a prepared sample) allocates
nothing but the small returned probability vector: the input is quantized
into a preallocated buffer (a lookup table per channel for uint8 images, which
also applies the contract's mean/std, channel order and layout), the output is
read through a view of the interpreter's tensor and dequantized into a
preallocated array. Image resizing is Pillow's, which makes its own buffer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.errors import DataError, ModelError
from edgepose.runtime.delegation import DelegationReport, delegation_report
from edgepose.runtime.input_contract import PIXELS, InputContract, PixelWriter, StatedContract
from edgepose.runtime.interpreter import InterpreterBackend, load_interpreter
from edgepose.runtime.manifest import Manifest
from edgepose.runtime.model_checks import (
    NotAClassifier,
    check_class_scores,
    check_single_io,
    fit_batch_of_one,
    manifest_image_size,
    resolve_contract,
    sample_shape,
)
from edgepose.runtime.preprocess import IMAGE_SUFFIXES, ImagePreprocessing, image_to_array
from edgepose.runtime.quantization import dequantize
from edgepose.runtime.tflite_file import embedded_labels, input_metadata, read_model_info

__all__ = ["Classification", "Classifier", "NotAClassifier", "rank_labels", "read_labels",
           "softmax"]

# Ops whose output is already a probability: no softmax on top of them.
_PROBABILITY_OPS = ("SOFTMAX", "LOGISTIC")


@dataclass(frozen=True)
class Classification:
    """One ranked answer: class ``index`` (output position), its ``label`` and ``score``.

    The one result type for a ranked label: ``predict``'s top-k, the service's
    per-frame top-k, ``Classifier.classify``.
    """

    index: int
    label: str
    score: float


def rank_labels(probabilities: np.ndarray, labels: Sequence[str], k: int
                ) -> list[Classification]:
    """The ``k`` best classes of a ``(num_classes,)`` score vector, highest score first.

    Ties keep class order (a stable sort), so equal scores rank the same every time.
    """
    order = np.argsort(-np.asarray(probabilities), kind="stable")[:k]
    return [Classification(int(i), labels[i], float(probabilities[i])) for i in order]


def softmax(x: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    z = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def read_labels(path: str | Path) -> list[str]:
    """One label per line; blank lines ignored.

    Raises:
        DataError: the labels file is missing or not UTF-8 text.
    """
    path = Path(path)
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]
    except FileNotFoundError:
        raise DataError("labels file not found", path) from None
    except UnicodeDecodeError:
        raise DataError("labels file is not UTF-8 text", path) from None


def invoke_failure(message: str) -> str:
    """The interpreter's invoke error as one line: the failing op first, then the check.

    ``'tflite/kernels/div.cc:262 data[i] != zero_point was not true.Node number 27 (DIV)
    failed to invoke.'`` -> ``'node 27 (DIV): tflite/kernels/div.cc:262 data[i] !=
    zero_point was not true'``.
    """
    text = " ".join(message.split())
    match = re.search(r"Node number (\d+) \((\w+)\) failed to (?:invoke|prepare)\.?", text)
    if match is None:
        return text or "the interpreter's invoke raised RuntimeError"
    detail = (text[:match.start()] + text[match.end():]).strip().rstrip(".")
    op = f"node {match.group(1)} ({match.group(2)})"
    return f"{op}: {detail}" if detail else f"{op} failed"


def invoke_checked(interpreter, model_path: str | Path) -> None:
    """``interpreter.invoke()``; a kernel failure becomes a one-line :class:`ModelError`.

    Raises ModelError naming ``model_path`` and the failing op (:func:`invoke_failure`)
    instead of the interpreter's multi-line RuntimeError.
    """
    try:
        interpreter.invoke()
    except RuntimeError as exc:
        raise ModelError(f"inference failed: {invoke_failure(str(exc))}", model_path) from None


def output_producer(interpreter, tensor_index: int) -> str | None:
    """Name of the original graph op that writes ``tensor_index`` (delegates looked through)."""
    for op in interpreter._get_ops_details():
        if op["op_name"] != "DELEGATE" and tensor_index in set(int(t) for t in op["outputs"]):
            return op["op_name"]
    return None


def _is_index(labels: list[str]) -> bool:
    return labels == [str(i) for i in range(len(labels))]


def resolve_labels(model_path: Path, labels_path: str | Path | None, manifest: Manifest | None,
                   manifest_path: Path, info) -> tuple[list[str], str]:
    """The class names of a model and where they come from, never silently overridden.

    The model's own names come first: its manifest, else labels packed into the
    ``.tflite`` (TFLite metadata), else a ``labels.txt`` beside the model (the TFLite
    examples' convention), else none (indices). ``labels_path`` (``--labels``) may name
    the classes of a model that states none or only indices; when the model states
    other names, the file must list the same ones in the same order (a file of another
    length is the count error :class:`Classifier` gives).

    Raises:
        ModelError: ``--labels`` disagrees with the names the model states (both named).
        DataError: a labels file cannot be read.
    """
    if manifest is not None and manifest.labels:
        own, own_source = list(manifest.labels), str(manifest_path)
    else:
        own, own_source = embedded_labels(model_path, info), "labels embedded in the model"
    beside = model_path.parent / "labels.txt"
    if not own and beside.is_file():
        own, own_source = read_labels(beside), str(beside)
    if not labels_path:
        return own, own_source
    given = read_labels(labels_path)
    if own and not _is_index(own) and len(given) == len(own) and given != own:
        def shown(names: list[str]) -> str:
            return ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        raise ModelError(f"--labels {labels_path} ({shown(given)}) disagrees with the labels "
                         f"in {own_source} ({shown(own)}): drop --labels to use the model's "
                         "own", model_path)
    return given, str(labels_path)


class Classifier:
    """Run a classification ``.tflite`` model on single samples.

    Build with :meth:`from_file`. ``manifest`` is None for a third-party model;
    then preprocessing is a plain resize to the input size, and softmax is applied
    only if the graph's output is not produced by a SOFTMAX/LOGISTIC op.
    """

    def __init__(self, interpreter, backend: InterpreterBackend, model_path: Path,
                 manifest: Manifest | None, labels: list[str], labels_source: str = "none",
                 use_xnnpack: bool = True, num_threads: int | None = None,
                 contract: InputContract | None = None, strict: bool = True,
                 image_size: tuple[int, int] | None = None):
        self.interpreter = interpreter
        self.backend = backend
        self.model_path = model_path
        self.manifest = manifest
        self.use_xnnpack = use_xnnpack
        self.num_threads = num_threads
        self._input, self._output = check_single_io(interpreter, model_path, strict)
        self.contract = contract or resolve_contract(self._input, manifest, None, None,
                                                     model_path, strict=strict)
        size = manifest_image_size(manifest) or image_size  # for a dynamic height/width
        self._input, self._output = fit_batch_of_one(interpreter, self._input, self._output,
                                                     model_path, size)
        self.outputs = interpreter.get_output_details()
        self.tensor_shape = tuple(int(d) for d in self._input["shape"])
        self.input_dtype = np.dtype(self._input["dtype"])
        self.sample_shape = sample_shape(self.tensor_shape, self.contract)
        # The shape of one prepared sample with its batch axis: for an NCHW image model
        # still 1 x H x W x 3 (the tensor's own shape is ``tensor_shape``).
        self.input_shape = (1, *self.sample_shape)
        self.num_classes = check_class_scores(self._output, model_path, strict)
        if not labels:
            labels, labels_source = [str(i) for i in range(self.num_classes)], "index"
        if len(labels) != self.num_classes:
            raise ModelError(f"model has {self.num_classes} outputs but {len(labels)} labels "
                             f"(from {labels_source})", model_path)
        self.labels = labels
        self.labels_source = labels_source
        if manifest is not None:
            self.outputs_logits = manifest.output_kind == "logits"
        else:
            producer = output_producer(interpreter, int(self._output["index"]))
            self.outputs_logits = producer not in _PROBABILITY_OPS
        self._input_buffer = np.zeros(self.tensor_shape, dtype=self.input_dtype)
        self._writer = PixelWriter(self._input, self.contract, self.tensor_shape)
        self._scores = np.zeros(self.num_classes, dtype=np.float32)
        self.preprocessing: ImagePreprocessing | None = None
        if manifest is not None and manifest.preprocessing:
            # the channels are the model's: a greyscale model decodes to one channel
            self.preprocessing = replace(ImagePreprocessing.from_dict(manifest.preprocessing),
                                         channels=self.contract.channels)
        elif self.task == "image":
            self.preprocessing = ImagePreprocessing(self.input_shape[1], self.input_shape[2],
                                                    channels=self.contract.channels)
        if self.preprocessing is not None and (
                (self.preprocessing.height, self.preprocessing.width) != self.input_shape[1:3]):
            raise ModelError(f"manifest preprocessing is {self.preprocessing.height}x"
                             f"{self.preprocessing.width} but the model input is "
                             f"{self.tensor_shape}", model_path)
        self._image_buffer = (np.zeros((self.preprocessing.height, self.preprocessing.width,
                                        self.preprocessing.channels), dtype=np.uint8)
                              if self.preprocessing else None)
        self._delegation: DelegationReport | None = None

    @classmethod
    def from_file(cls, model_path: str | Path, manifest_path: str | Path | None = None,
                  labels_path: str | Path | None = None, num_threads: int | None = None,
                  use_xnnpack: bool = True, prefer: str | None = None,
                  stated: StatedContract | None = None, strict: bool = True) -> Classifier:
        """Load a model; its manifest is found next to it (``model_x.json``) when present.

        ``stated`` is the input contract the user gave (``--input-range`` ...), which
        overrides the manifest's and the model's own. Raises :class:`ModelError` for
        a model the classifier cannot run (:class:`NotAClassifier` for one that is
        not a single-input classifier, e.g. a landmark model) and for a float image
        model whose pixel range nothing states. ``strict=False`` is for timing only
        (``bench`` without data): output 0 is read as scores and an unstated pixel
        range is taken as 0..255, both said in ``contract.source``; never use it to
        report an answer.
        """
        model_path = Path(model_path)
        info = read_model_info(model_path)
        if manifest_path is not None and not Path(manifest_path).is_file():
            raise ModelError("manifest not found", manifest_path)
        manifest_path = Path(manifest_path) if manifest_path else Manifest.path_for(model_path)
        manifest = Manifest.load(manifest_path) if manifest_path.is_file() else None
        labels, source = resolve_labels(model_path, labels_path, manifest, manifest_path, info)
        interpreter, backend = load_interpreter(model_path, num_threads, use_xnnpack, prefer)
        metadata = input_metadata(info)
        detail, output = check_single_io(interpreter, model_path, strict)
        # Not a classifier is the more basic refusal: say it before any contract question
        # (batch axis set to 1 here: a batch-4 model is resized in __init__).
        check_class_scores({**output, "shape": [1, *output["shape"][1:]]}, model_path, strict)
        contract = resolve_contract(detail, manifest, manifest_path if manifest else None, info,
                                    model_path, stated, strict)
        return cls(interpreter, backend, model_path, manifest, labels, source,
                   use_xnnpack=use_xnnpack, num_threads=num_threads, contract=contract,
                   strict=strict, image_size=metadata.size if metadata else None)

    @property
    def task(self) -> str:
        """``"image"``, ``"keypoints"`` or ``"unknown"`` (third-party, non-image input)."""
        if self.manifest is not None:
            return self.manifest.task
        return "image" if self.contract.kind == PIXELS else "unknown"

    @property
    def delegation(self) -> DelegationReport:
        """Which ops XNNPACK runs (computed once)."""
        if self._delegation is None:
            self._delegation = delegation_report(self.interpreter, self.use_xnnpack)
        return self._delegation

    def set_input(self, sample: np.ndarray) -> None:
        """Write one sample (without the batch axis) into the input tensor.

        An image model takes RGB pixels 0..255, ``H x W x 3`` whatever its tensor's
        layout (``H x W x 1`` grey for a greyscale model); the input contract turns them
        into the values the model wants. Other models take their input values as they are.

        Raises:
            DataError: ``sample``'s shape is not the model's sample shape.
        """
        sample = np.asarray(sample)
        if sample.shape != self.sample_shape:
            if sample.shape == self.input_shape:
                sample = sample[0]
            else:
                raise DataError(f"input has shape {sample.shape}, model {self.model_path.name} "
                                f"expects {self.sample_shape}")
        self._writer(sample, self._input_buffer[0])
        self.interpreter.set_tensor(self._input["index"], self._input_buffer)

    def invoke(self) -> None:
        """Run the graph; a kernel failure becomes a one-line :class:`ModelError`."""
        invoke_checked(self.interpreter, self.model_path)

    def scores(self) -> np.ndarray:
        """Class probabilities of the last invoke, float32 (a new small array).

        Raises :class:`ModelError` when the output holds NaN or inf."""
        raw = self.interpreter.tensor(self._output["index"])()  # view, no copy
        dequantize(raw.reshape(-1), self._output, out=self._scores)
        del raw  # the interpreter refuses to invoke while views are alive
        if not np.isfinite(self._scores).all():  # NaN/inf would rank as an answer
            raise ModelError("model output holds NaN/inf values: the model (or its "
                             "conversion) is broken for this input", self.model_path)
        return softmax(self._scores) if self.outputs_logits else self._scores.copy()

    def predict(self, sample: np.ndarray) -> np.ndarray:
        """Probabilities for one prepared sample (image pixels HxWx3 or keypoint vector)."""
        self.set_input(sample)
        self.invoke()
        return self.scores()

    def prepare_image(self, image) -> np.ndarray:
        """Path, PIL image or array -> the model's uint8 input array (reused buffer).

        Raises:
            DataError: the model does not take images, or the image cannot be decoded
                (:class:`~edgepose.errors.ImageTooLarge` over the pixel cap).
        """
        if self.preprocessing is None:
            raise DataError(f"model {self.model_path.name} does not take images "
                            f"(input shape {self.input_shape})")
        return image_to_array(image, self.preprocessing, out=self._image_buffer)

    def keypoint_layout(self):
        """The :class:`KeypointLayout` of a keypoint model: the manifest's, else the one
        whose vector length fits the input; :class:`ModelError` when neither says.

        Raises:
            ModelError: no layout in the manifest and none fits the input shape.
        """
        from edgepose.runtime.layouts import get_layout, layout_for_length

        if self.manifest is not None and self.manifest.keypoint_layout:
            return get_layout(self.manifest.keypoint_layout)
        found = layout_for_length(int(np.prod(self.input_shape[1:])))
        if found is None:
            raise ModelError("no keypoint layout in the manifest and none fits the "
                             f"input shape {self.input_shape}", self.model_path)
        return found

    def prepare_keypoints(self, sample) -> np.ndarray:
        """Keypoint file (JSON, or ``file.csv#row``) or vector -> float32 model input.

        null / NaN numbers in a file read as NaN: :meth:`no_person` then says so.
        """
        if isinstance(sample, (str, Path)):
            from edgepose.runtime.keypoint_file import load_keypoint_vector

            sample = load_keypoint_vector(sample, self.keypoint_layout(), allow_missing=True)
        return np.asarray(sample, dtype=np.float32).reshape(self.input_shape[1:])

    def no_person(self, sample: np.ndarray) -> str | None:
        """Why a prepared keypoint sample holds no person (all zero, too few visible joints,
        NaN), else None; always None for image models. Such a sample has no class: callers
        report "no person" instead of calling :meth:`predict`."""
        if self.task != "keypoints":
            return None
        from edgepose.runtime.presence import no_person_reason

        try:
            layout = self.keypoint_layout()
        except ModelError:  # no layout known: NaN and all-zero can still be told
            layout = None
        return no_person_reason(sample, layout)

    def prepare(self, sample: Any) -> np.ndarray:
        """Any accepted input (image path/PIL/array, keypoint file/vector) -> model input.

        Raises:
            DataError: a file that is not an image (by suffix) for an image model, or a sample that
                cannot be read or decoded.
        """
        if self.task == "keypoints":
            return self.prepare_keypoints(sample)
        if isinstance(sample, (str, Path)) and Path(sample).suffix.lower() in IMAGE_SUFFIXES:
            return self.prepare_image(sample)
        if isinstance(sample, (str, Path)):
            raise DataError(f"not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})",
                            sample)
        if self.preprocessing is not None and not isinstance(sample, np.ndarray):
            return self.prepare_image(sample)  # a PIL image
        if (self.preprocessing is not None and isinstance(sample, np.ndarray)
                and sample.ndim == 3 and sample.shape != self.input_shape[1:]):
            return self.prepare_image(sample)  # an image array of another size or channels
        if self.preprocessing is not None and isinstance(sample, np.ndarray) \
                and sample.ndim == 2:
            return self.prepare_image(sample)  # an H x W grey array
        return np.asarray(sample)

    def top_k(self, probabilities: np.ndarray, k: int = 3) -> list[Classification]:
        """The ``k`` best classes, highest score first (ties keep class order)."""
        return rank_labels(probabilities, self.labels, k)

    def classify(self, sample: Any, k: int = 3) -> list[Classification]:
        """Top-k labels for one sample of any accepted kind."""
        return self.top_k(self.predict(self.prepare(sample)), k)

    def classify_image(self, image, k: int = 3) -> list[Classification]:
        """Top-k labels for one image (path, PIL image or array)."""
        return self.top_k(self.predict(self.prepare_image(image)), k)
