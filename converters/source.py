"""What is being converted: the source model, its run directory, its input contract.

:func:`resolve_source` finds the model, labels, config and splits of a run
directory, a model inside one, or a bare ``.keras`` file; :func:`source_contract`
decides how raw input becomes model input (stated by the user, recorded in the
run, or read from the model's first inference layer), refusing when it cannot know.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.converters.export import is_training_only
from edgepose.data.splits import Splits
from edgepose.errors import ConfigError, DataError, ModelError
from edgepose.fileio import read_json
from edgepose.rundir import RunDir
from edgepose.runtime.classifier import read_labels
from edgepose.runtime.input_contract import (
    STATE_IT,
    InputContract,
    StatedContract,
    apply_stated,
)
from edgepose.runtime.preprocess import ImagePreprocessing


@dataclass
class Source:
    """What is being converted and where its data and outputs live."""

    model_path: Path
    out_dir: Path
    config: dict[str, Any]
    labels: list[str] | None
    splits: Splits | None

    @property
    def stem(self) -> str:
        """The stem of every converted file, whatever the source is called:
        ``model`` (``model_<mode>.tflite``, :data:`RunDir.MODEL_STEM`). One rule for run
        directories and bare ``.keras`` files; the folder holds one model's conversions
        (its report and reference outputs are per folder too), see :func:`check_folder`."""
        return RunDir.MODEL_STEM

    @property
    def folder(self) -> RunDir:
        """The output folder, which names every file written (a run directory or not)."""
        return RunDir(self.out_dir)


def resolve_source(path: str | Path) -> Source:
    """A run directory, a model inside one, or a bare ``.keras`` file.

    Raises:
        ModelError: ``source`` is neither a run directory nor a model file.
    """
    path = Path(path)
    if path.is_dir():
        run = RunDir.open(path)
        return Source(run.model_path, run.path, run.config, run.labels, run.splits)
    if not path.exists():
        raise ModelError("no such run directory or model file", path)
    parent = path.parent
    folder = RunDir(parent)
    check_folder(path)  # e.g. finetuned.keras beside a run's model.keras: refused
    if RunDir.holds_splits(parent):
        run = RunDir.open(parent)
        labels = run.labels if run.labels_path.is_file() else None
        return Source(path, parent, run.config, labels, run.splits)
    labels = read_labels(folder.labels_path) if folder.labels_path.is_file() else None
    config = read_json(folder.config_path) if folder.config_path.is_file() else {}
    return Source(path, parent, config, labels, None)


def converted_from(folder: str | Path) -> dict[Path, str]:
    """Files of ``folder`` written by an earlier conversion -> the source model file name
    each records (the report's ``source``, each manifest's ``source_model``)."""
    run = RunDir(Path(folder))
    found: dict[Path, str] = {}
    candidates = [run.conversion_report_path(".json")] + sorted(
        Path(folder).glob(f"{RunDir.MODEL_STEM}_*.json"))
    for path in candidates:
        if not path.is_file():
            continue
        try:
            data = read_json(path)
        except DataError:
            continue  # an unreadable earlier file says nothing about its source
        source = data.get("source") or data.get("source_model") if isinstance(data, dict) \
            else None
        if isinstance(source, str) and source:
            found[path] = Path(source).name
    return found


def check_folder(model_path: str | Path) -> None:
    """Refuse to convert ``model_path`` into a folder holding another model's conversions.

    Converted files are named ``model_<mode>.tflite`` whatever the source is called
    (:attr:`Source.stem`), so two ``.keras`` files in one folder would overwrite each
    other's models and report.

    Raises:
        ConfigError: the folder holds a conversion of another model (names the file
            already there and its source).
    """
    model_path = Path(model_path)
    for path, source in converted_from(model_path.parent).items():
        if source != model_path.name:
            raise ConfigError(f"{path.name} here was converted from {source}, not "
                              f"{model_path.name}: converted models are named "
                              f"{RunDir.MODEL_STEM}_<mode>.tflite, one model per folder; "
                              f"move {model_path.name} into a folder of its own",
                              model_path.parent)


def infer_config(config: dict[str, Any], shape: tuple[int, ...],
                 model_path: str | Path | None = None) -> dict[str, Any]:
    """Fill ``task``/``preprocessing``/``keypoint_layout`` for a bare model from its input.

    ``shape`` excludes the batch axis. H x W x 3 or H x W x 1 is an image (RGB or
    greyscale); anything else a keypoint vector. ``model_path`` names the model in errors.

    Raises:
        ConfigError: a bare model whose input is 3 x H x W or 1 x H x W (channels
            first), H x W x 2 or H x W x 4 (grey/RGB with alpha), or H x W with W > 4
            (an image without a channel axis, or some feature matrix: not K keypoints
            of 2..4 values): converting it as keypoint features would give confident
            nonsense, and edgepose feeds channels-last RGB or greyscale images only.
    """
    config = dict(config)
    if "task" not in config and len(shape) == 3 and shape[0] in (1, 3) \
            and shape[-1] not in (1, 3):
        dims = " x ".join(str(d) for d in shape)
        raise ConfigError(f"the model's input is {dims} (channels first, NCHW): edgepose "
                          "converts image models laid out H x W x C (channels last); rebuild "
                          "it channels-last (keras.layers.Permute or data_format="
                          "'channels_last') and convert that", model_path)
    if "task" not in config and len(shape) == 3 and shape[-1] in (2, 4) \
            and min(shape[0], shape[1]) > 4:
        dims = " x ".join(str(d) for d in shape)
        raise ConfigError(f"the model's input is {dims}: an image with {shape[-1]} channels "
                          "(alpha?); edgepose feeds images as RGB (3 channels) or greyscale "
                          "(1), so it cannot convert this as an image model nor as keypoint "
                          "features", model_path)
    if "task" not in config and len(shape) == 2 and shape[-1] > 4:
        dims = " x ".join(str(d) for d in shape)
        reshape = f"keras.layers.Reshape(({shape[0]}, {shape[1]}, 1))"
        raise ConfigError(f"the model's input is {dims}: an image without a channel axis, or "
                          "a feature matrix? edgepose converts images laid out H x W x C and "
                          "keypoints as K x 2..4 (x, y[, z][, visibility]) or one flat "
                          f"vector; for a greyscale image put {reshape} in front, then "
                          "convert that", model_path)
    if "task" not in config:  # H x W x 3 (RGB) or H x W x 1 (greyscale) is an image
        config["task"] = "image" if len(shape) == 3 and shape[-1] in (1, 3) else "keypoints"
    if config["task"] == "image" and "preprocessing" not in config:
        channels = int(shape[-1]) if len(shape) == 3 and shape[-1] in (1, 3) else 3
        config["preprocessing"] = ImagePreprocessing(shape[0], shape[1],
                                                     channels=channels).to_dict()
    if config["task"] == "keypoints" and "keypoint_layout" not in config:
        from edgepose.runtime.layouts import layout_for_length

        layout = layout_for_length(int(np.prod(shape)))
        config["keypoint_layout"] = layout.name if layout else None
    return config


def _inference_layers(model):
    """Layers in graph order, nested models flattened, the Input and training-only layers
    (augmentation, Dropout, ...: identities at inference) left out."""
    for layer in model.layers:
        if getattr(layer, "layers", None):
            yield from _inference_layers(layer)
        elif layer.__class__.__name__ != "InputLayer" and not is_training_only(layer):
            yield layer


def _first_layer(model):
    """The first layer that acts on the input at inference (see :func:`_inference_layers`)."""
    return next(_inference_layers(model), None)


def _rescales_raw_pixels(layer) -> bool:
    """True when a ``Rescaling`` layer maps 0..255 onto 0..1 or -1..1 (within 1%).

    ``Rescaling(1/255)`` and ``Rescaling(1/127.5, offset=-1)`` take raw pixels; a
    ``Rescaling(2, offset=-1)`` takes 0..1 and says nothing about 0..255.
    """
    try:
        scale = float(np.mean(np.asarray(layer.scale, dtype=np.float64)))
        offset = float(np.mean(np.asarray(layer.offset, dtype=np.float64)))
    except (TypeError, ValueError):
        return False
    low, high = offset, 255.0 * scale + offset
    return any(abs(low - lo) <= 0.01 * (hi - lo) and abs(high - hi) <= 0.01 * (hi - lo)
               for lo, hi in ((0.0, 1.0), (-1.0, 1.0)))


def source_contract(src: Source, model, stated: StatedContract | None = None) -> InputContract:
    """The input contract of the model being converted (see README "Input contract").

    Keypoint models take features as given. For an image model, what the source
    states, in order: a contract recorded in the run's config.json, a run directory
    edgepose trained (raw 0..255: rescaling is inside the graph), a first layer that
    is ``Rescaling`` (it maps raw pixels itself). What the user stated
    (``--input-range`` ...) must agree with that (:func:`apply_stated`; a run's
    contract states its channel order, a Rescaling layer does not) unless
    ``stated.override`` (``--override-contract``). A source that states nothing (a
    bare .keras trained on ``pixels / 255``, a keras.applications backbone wanting
    -1..1, a Normalization layer adapted on unknown data) takes the user's word, or
    raises :class:`ConfigError` asking for it: guessing 0..255 there is the silent
    wrong answer of issue 11.

    Raises:
        ConfigError: an image model whose pixel range edgepose cannot tell and nobody stated, or
            contract options stated for a keypoint model.
        ModelError: a stated flag that disagrees with what the source states, without
            ``--override-contract``.
    """
    if src.config["task"] != "image":
        if stated is not None and stated.given:
            raise ConfigError("--input-range/--input-mean/--input-std/--channel-order apply "
                              "to image models; this is a keypoint model")
        return InputContract.features(source="a keypoint model")
    channels = int(src.config.get("preprocessing", {}).get("channels", 3))
    base, states_order = _stated_by_source(src, model)
    if base is not None:
        base = _with_channels(base, channels)
    if stated is not None and stated.given:
        contract = apply_stated(stated, base, states_order, src.model_path)
        if contract is not None:
            return _with_channels(contract, channels)
    if base is not None:
        return base
    first = _first_layer(model)
    found = first.__class__.__name__ if first is not None else "none"
    if found == "Rescaling":
        found = (f"Rescaling(scale={first.scale}, offset={first.offset}), which does not map "
                 "0..255 onto 0..1 or -1..1")
    raise ConfigError(f"{src.model_path}: not an edgepose run and the first layer is {found}, "
                      "not a Rescaling of raw pixels: edgepose cannot tell which pixel range the "
                      f"model was trained on; {STATE_IT}")


def _with_channels(contract: InputContract, channels: int) -> InputContract:
    """``contract`` for an input of ``channels`` (1: greyscale, one mean/std, no order).

    Raises ConfigError for a greyscale model given ``--channel-order bgr`` or three
    different means/stds (see :meth:`InputContract.with_tensor`).
    """
    if channels == contract.channels:
        return contract
    return contract.with_tensor(contract.dtype, channels=channels)


def _stated_by_source(src: Source, model) -> tuple[InputContract | None, bool]:
    """The contract the source itself states (None when it states none), and whether
    that includes the channel order (a recorded contract or an edgepose run does; a
    Rescaling layer only says the range)."""
    if src.config.get("input_contract"):
        return InputContract.from_dict(src.config["input_contract"],
                                       "the run's config.json"), True
    if src.splits is not None or src.config.get("backbone"):
        return InputContract.raw("the run directory (edgepose models rescale in the "
                                 "graph)"), True
    first = _first_layer(model)
    if first is not None and first.__class__.__name__ == "Rescaling" \
            and _rescales_raw_pixels(first):
        return InputContract.raw(f"the model's first layer {first.name!r} (Rescaling of raw "
                                 "0..255 pixels)"), False
    return None, False
