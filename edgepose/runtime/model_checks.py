"""What the classifier checks about a model it did not make, before running it.

Real ``.tflite`` files come with a fixed batch of 4, several inputs, NCHW,
float16 inputs, a dynamic height and width, or outputs that are not class
scores (landmarks, feature maps). Each check here turns one of those into
either a model the classifier can run at batch 1, or a one-line
:class:`ModelError` naming the shape it cannot use, never a numpy traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgepose.errors import ConfigError, ModelError
from edgepose.runtime.input_contract import (
    FEATURES,
    InputContract,
    StatedContract,
    apply_stated,
    contract_from_quantization,
    image_channels,
    image_layout,
    refuse_unstated,
)
from edgepose.runtime.manifest import Manifest
from edgepose.runtime.tflite_file import ModelFileInfo, input_metadata


class NotAClassifier(ModelError):
    """The model runs, but is not a single-input classifier (``edgepose bench`` times it)."""


def _describe(details: Sequence[dict]) -> str:
    return ", ".join(f"{list(int(d) for d in t['shape'])} {np.dtype(t['dtype']).name}"
                     for t in details)


def check_single_io(interpreter, model_path: Path, strict: bool = True) -> tuple[dict, dict]:
    """The one input and one output detail; several of either raises NotAClassifier.

    ``strict=False`` (timing only) accepts several outputs and returns the first.

    Raises:
        NotAClassifier: several inputs, or (``strict``) several outputs.
    """
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1:
        raise NotAClassifier(f"model has {len(inputs)} inputs ({_describe(inputs)}); the "
                             "classifier feeds one image or vector", model_path)
    if len(outputs) != 1 and strict:
        raise NotAClassifier(f"model has {len(outputs)} outputs ({_describe(outputs)}); a "
                             "classifier has one output of class scores", model_path)
    return inputs[0], outputs[0]


def check_class_scores(output: dict, model_path: Path, strict: bool = True) -> int:
    """Number of classes of a ``1 x C`` (or ``1 x 1 x ... x C``) output, else NotAClassifier.

    ``strict=False`` (timing only) counts every value of the output.

    Raises:
        NotAClassifier: an output that is not scores (its type), holds one score (a sigmoid), or is
            not a vector of class scores.
    """
    shape = [int(d) for d in output["shape"]]
    if not strict:
        return int(np.prod(shape[1:]))
    if len(shape) < 2 or shape[0] != 1 or sum(d > 1 for d in shape[1:]) > 1:
        raise NotAClassifier(f"output shape {shape} is not a vector of class scores",
                             model_path)
    if int(np.prod(shape[1:])) < 2:
        # One number (a sigmoid's P(class 1)) ranked as a one-class vector always answers
        # class 0, whatever the number: a confident wrong answer.
        raise NotAClassifier(f"output shape {shape} holds one score (a sigmoid?), not a "
                             "vector of class scores; export two outputs (softmax)",
                             model_path)
    if not (np.issubdtype(output["dtype"], np.floating)
            or np.issubdtype(output["dtype"], np.integer)):
        raise NotAClassifier(f"output type {np.dtype(output['dtype']).name} is not class "
                             "scores", model_path)
    return int(np.prod(shape[1:]))


def classifier_problem(interpreter) -> str | None:
    """Why an allocated interpreter's model is not a classifier, or None when it is one.

    The same checks :class:`~edgepose.runtime.classifier.Classifier` makes
    (:func:`check_single_io`, :func:`check_class_scores`), for callers that choose
    another path for such models (``edgepose bench`` times them as generic models).
    """
    try:
        detail, output = check_single_io(interpreter, Path("model"))
        check_class_scores(per_sample_output(detail, output), Path("model"))
    except NotAClassifier as exc:
        return exc.message
    return None


def per_sample_output(detail: dict, output: dict) -> dict:
    """``output`` as it is for one sample, when the input's batch axis is the output's.

    A model with a fixed batch of N (any N > 1) or a dynamic batch (signature -1)
    outputs ``N x C``: one score vector per sample, a classifier that
    :func:`fit_batch_of_one` resizes to batch 1, not a model of N x C "scores".
    An output whose first axis is not the input's batch is returned unchanged.
    """
    in_shape = [int(d) for d in detail["shape"]]
    out_shape = [int(d) for d in output["shape"]]
    signature = [int(d) for d in detail.get("shape_signature", in_shape)]
    batched = bool(in_shape) and len(out_shape) >= 2 and (
        signature[0] == -1 or (in_shape[0] > 1 and out_shape[0] == in_shape[0]))
    return {**output, "shape": [1, *out_shape[1:]]} if batched else output


class FixedBatch(ModelError):
    """The graph's own ops fix the batch: the model cannot run one sample at a time."""


def manifest_image_size(manifest: Manifest | None) -> tuple[int, int] | None:
    """``(height, width)`` the manifest's preprocessing states, if any."""
    if manifest is None or not manifest.preprocessing:
        return None
    return int(manifest.preprocessing["height"]), int(manifest.preprocessing["width"])


def fit_batch_of_one(interpreter, detail: dict, output: dict, model_path: Path,
                     image_size: tuple[int, int] | None = None) -> tuple[dict, dict]:
    """Resize the input to batch 1 (and a dynamic image size to ``image_size``).

    A fixed batch of N is resized with ``resize_tensor_input(strict=False)``; a
    graph whose ops fix the batch (a RESHAPE to ``[4, -1]``) fails to allocate or
    keeps an output batch of N: then ModelError names the input shape. A dynamic
    height/width (``shape_signature`` -1) needs ``image_size``.

    Raises:
        ModelError: the input cannot be resized to batch 1, the graph keeps a batch of N, or a
            dynamic height/width with no stated image size.
    """
    shape = [int(d) for d in detail["shape"]]
    signature = [int(d) for d in detail.get("shape_signature", shape)]
    wanted = list(shape)
    wanted[0] = 1
    layout = image_layout([1 if d == -1 else d for d in signature]) \
        or image_layout(shape)
    spatial = {"NHWC": (1, 2), "NCHW": (2, 3)}.get(layout or "", ())
    if any(signature[i] == -1 for i in spatial):
        if image_size is None:
            raise ModelError(f"input has a dynamic height/width (shape signature {signature}) "
                             "and nothing states the image size (no manifest preprocessing, "
                             "no TFLite metadata image size)", model_path)
        wanted[spatial[0]], wanted[spatial[1]] = image_size
    if wanted == shape:
        return detail, output
    try:
        interpreter.resize_tensor_input(detail["index"], wanted, strict=False)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise FixedBatch(f"input shape {shape} cannot be resized to {wanted} ({reason})",
                         model_path) from None
    detail = interpreter.get_input_details()[0]
    output = interpreter.get_output_details()[0]
    if int(output["shape"][0]) != 1:
        raise FixedBatch(f"input shape {shape} resized to {wanted}, but the output stays "
                         f"{[int(d) for d in output['shape']]}: the graph fixes the batch",
                         model_path)
    return detail, output


def sample_shape(tensor_shape: tuple[int, ...], contract: InputContract) -> tuple[int, ...]:
    """One prepared sample's shape: ``H x W x C`` pixels for images whatever the layout."""
    if contract.kind == FEATURES:
        return tuple(tensor_shape[1:])
    if contract.layout == "NCHW":
        return (tensor_shape[2], tensor_shape[3], tensor_shape[1])
    return tuple(tensor_shape[1:])


def resolve_contract(detail: dict, manifest: Manifest | None, manifest_path: Path | None,
                     info: ModelFileInfo | None, model_path: Path,
                     stated: StatedContract | None = None, strict: bool = True
                     ) -> InputContract:
    """The input contract of a model: the manifest, else TFLite metadata, else the
    quantization of an integer input, else what the user stated; a float image input with
    none of them is refused.

    A stated contract (``--input-range`` ...) that disagrees with what the model states
    raises :class:`ModelError` naming both, unless ``stated.override``
    (:func:`~edgepose.runtime.input_contract.apply_stated`).

    A model is an image model when its manifest says so or its input is 4-D with 3
    (RGB) or 1 (greyscale) channels, NHWC or NCHW; anything else takes features as
    given. ``strict=False`` (timing only) takes an unstated range as 0..255 and says so
    in ``source``.

    Raises:
        ModelError: a float image input whose range nothing states (``strict``), an integer image
            input whose quantization is no known pixel range, or contract options stated for a model
            that does not take images.
    """
    shape = [int(d) for d in detail["shape"]]
    dtype = np.dtype(detail["dtype"]).name
    layout = image_layout(shape)
    is_image = manifest.task == "image" if manifest is not None else layout is not None
    if not is_image:
        if stated is not None and (stated.normalization_given or stated.channel_order):
            raise ModelError(f"--input-range/--input-mean/--input-std/--channel-order apply to "
                             f"image models; this one takes {shape} {dtype}", model_path)
        return InputContract.features(dtype, "the model's input (not an image)")
    base: InputContract | None = None
    states_order = manifest is not None  # metadata and quantization say no channel order
    if manifest is not None:
        base = manifest.contract(manifest_path)
    else:
        meta = input_metadata(info) if info is not None else None
        if meta is not None and meta.mean is not None and meta.std is not None:
            base = InputContract(mean=meta.mean, std=meta.std,
                                 source="TFLite metadata NormalizationOptions")
            # ImageProperties.color_space RGB states the order (the schema has no BGR).
            states_order = meta.color_space == "RGB"
        elif detail["quantization"][0] and np.issubdtype(detail["dtype"], np.integer):
            scale, zero_point = detail["quantization"]
            base = contract_from_quantization(float(scale), int(zero_point), dtype)
    contract = apply_stated(stated, base, states_order, model_path)
    if contract is None and not strict:
        contract = InputContract.raw("nothing: assumed 0..255, for timing only")
    if contract is None:
        if np.issubdtype(detail["dtype"], np.integer) and detail["quantization"][0]:
            scale, zero_point = detail["quantization"]
            info_range = np.iinfo(np.dtype(dtype))
            lo, hi = scale * (info_range.min - zero_point), scale * (info_range.max - zero_point)
            raise ModelError(f"{dtype} image input (scale {scale:.6g}, zero point {zero_point}) "
                             f"stands for {lo:.4g}..{hi:.4g}, not a known pixel range; state "
                             "it with --input-range or --input-mean/--input-std", model_path)
        raise refuse_unstated(shape, dtype, model_path)
    try:
        return contract.with_tensor(dtype, layout or "NHWC", image_channels(shape, layout))
    except ConfigError as exc:
        raise ModelError(f"{exc.message} (input {shape} {dtype})", model_path) from None
