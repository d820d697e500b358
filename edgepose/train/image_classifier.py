"""Transfer-learn an image classifier: build, train, evaluate, export a run directory.

The exported ``model.keras`` is the inference model: raw RGB 0..255 (float32,
``None x S x S x 3``) in, softmax probabilities out, backbone normalisation
inside, and no augmentation layers (they live only in the training wrapper).

Training is staged when the backbone is pretrained: stage ``feature_extraction``
trains the head on a frozen backbone; stage ``fine_tune`` (``fine_tune_epochs``
> 0) unfreezes the top of the backbone at a lower learning rate, BatchNorm kept
in inference mode. With ``weights="none"`` there is nothing to extract, so the
whole network trains in one stage ``train``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgepose.data.splits import Splits
from edgepose.errors import DataError
from edgepose.keras_quiet import keras
from edgepose.runtime.preprocess import ImagePreprocessing, image_to_array
from edgepose.train.evaluation import EvaluationResult
from edgepose.train.hyperparameters import ImageModelParams, ImageTrainOptions
from edgepose.train.model_spec import BackboneSpec, get_backbone
from edgepose.train.rundir_writer import check_run_dir, default_run_dir, versions
from edgepose.train.trainer_steps import train_run
from edgepose.train.training import Stage, reproducibility, unfreeze_backbone
from edgepose.train.weights import WeightsReport, build_backbone

if TYPE_CHECKING:
    from edgepose.train.progress import TrainProgress

IN_MEMORY_LIMIT = 2 * 1024**3  # bytes of uint8 images; beyond this, batches are read from disk

# preset -> (flip, rotation, zoom, translation, contrast); 0 leaves the layer out
AUGMENTATIONS: dict[str, tuple[bool, float, float, float, float]] = {
    "none": (False, 0.0, 0.0, 0.0, 0.0),
    "light": (True, 0.05, 0.1, 0.0, 0.0),
    "medium": (True, 0.1, 0.15, 0.1, 0.1),
    "strong": (True, 0.2, 0.25, 0.15, 0.3),
    # no flip, no contrast: rotation +-0.03 turn (about 11 degrees), zoom and translation
    # +-10% (Simard et al. 2003 distort handwritten digits by similar small affine maps)
    "shift": (False, 0.03, 0.1, 0.1, 0.0),
}


@dataclass
class ImageClassifierModel:
    """The inference model, the training wrapper around it, and its backbone."""

    inference: keras.Model
    training: keras.Model
    backbone: keras.Model
    spec: BackboneSpec
    input_size: int
    alpha: float | None
    weights: WeightsReport
    pretrained: bool

    @property
    def preprocessing(self) -> ImagePreprocessing:
        return ImagePreprocessing(self.input_size, self.input_size)


def build_augmentation(preset: str, seed: int = 0) -> keras.Sequential | None:
    """Random flip/rotation/zoom/translation/contrast on 0..255 images (training only)."""
    flip, rotation, zoom, translation, contrast = AUGMENTATIONS[preset]
    layers: list[keras.layers.Layer] = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, fill_mode="nearest", seed=seed + 1))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="nearest", seed=seed + 2))
    if translation:
        layers.append(keras.layers.RandomTranslation(translation, translation,
                                                     fill_mode="nearest", seed=seed + 3))
    if contrast:
        layers.append(keras.layers.RandomContrast(contrast, value_range=(0, 255),
                                                  seed=seed + 4))
    return keras.Sequential(layers, name="augmentation") if layers else None


def build_image_model(num_classes: int, params: ImageModelParams, seed: int = 0
                      ) -> ImageClassifierModel:
    """Backbone (+ its weights) + head -> inference model; augmentation -> training model.

    A pretrained backbone starts frozen, and its BatchNorm layers stay frozen through
    every stage (:func:`unfreeze_backbone`): that, not the ``training=False`` it is
    wired with (Keras 3 passes the outer call's ``training`` to nested models), keeps
    them in inference mode.
    """
    spec = get_backbone(params.backbone)
    size = params.input_size or spec.default_size
    alpha = spec.check(size, params.alpha)
    backbone, report = build_backbone(spec, size, alpha, params.weights)
    pretrained = params.pretrained
    backbone.trainable = not pretrained
    if not pretrained:
        # Keras MobileNets use BatchNorm momentum 0.999: trained from scratch for a few
        # epochs their moving statistics stay near the initial values and inference
        # collapses to one class. 0.99 converges within a few hundred steps.
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = min(layer.momentum, 0.99)

    inputs = keras.Input((size, size, 3), name="image")
    x = inputs
    if spec.rescale is not None:
        scale, offset = spec.rescale
        x = keras.layers.Rescaling(scale, offset, name="preprocess")(x)
    x = backbone(x, training=False) if pretrained else backbone(x)
    for i, units in enumerate(params.head):
        x = keras.layers.Dense(units, use_bias=not params.batchnorm, name=f"head_dense_{i}")(x)
        if params.batchnorm:
            x = keras.layers.BatchNormalization(name=f"head_bn_{i}")(x)
        x = keras.layers.Activation("relu", name=f"head_relu_{i}")(x)
        if params.dropout:
            x = keras.layers.Dropout(params.dropout, seed=seed + 10 + i,
                                     name=f"head_dropout_{i}")(x)
    if params.dropout:
        x = keras.layers.Dropout(params.dropout, seed=seed + 9, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    inference = keras.Model(inputs, outputs, name=f"edgepose_{spec.name}")

    augmentation = build_augmentation(params.augment, seed)
    train_inputs = keras.Input((size, size, 3), name="image")
    augmented = augmentation(train_inputs) if augmentation is not None else train_inputs
    training = keras.Model(train_inputs, inference(augmented), name="training")
    return ImageClassifierModel(inference, training, backbone, spec, size, alpha, report,
                                pretrained)


@dataclass
class ImageTrainResult:
    """What ``edgepose train image`` did and where it put it."""

    run_dir: str
    backbone: str
    input_size: int
    classes: list[str]
    split_sizes: dict[str, int]
    weights: str  # WeightsReport.summary()
    weights_loaded_layers: int
    unfrozen_layers: int  # stage 2 trainable backbone layers (0 without fine-tuning)
    epochs: int
    seconds: float
    images_per_second: float
    best: dict | None  # the best epoch's row
    metrics: EvaluationResult
    data_summary: str = ""  # the data layer's report: counts, skipped files, leaks


def _stream_loader(splits: Splits, samples: list, spec: ImagePreprocessing):
    def load(indices: np.ndarray) -> np.ndarray:
        out = np.zeros((len(indices), spec.height, spec.width, 3), dtype=np.uint8)
        for row, index in enumerate(indices):
            image_to_array(splits.absolute(samples[int(index)]), spec, out=out[row])
        return out
    return load


def _decode_all(splits: Splits, samples: list, spec: ImagePreprocessing,
                on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """uint8 ``N x H x W x 3``, exactly as :func:`edgepose.rundir.load_inputs` decodes them,
    on a few threads (Pillow releases the GIL while decoding and resizing)."""
    out = np.zeros((len(samples), spec.height, spec.width, 3), dtype=np.uint8)

    def decode(row: int) -> None:
        image_to_array(splits.absolute(samples[row]), spec, out=out[row])

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for done, _ in enumerate(pool.map(decode, range(len(samples))), start=1):
            if on_progress is not None:
                on_progress(done, len(samples))
    return out


def _inputs(splits: Splits, split: str, spec: ImagePreprocessing,
            progress: TrainProgress | None = None):
    """uint8 images in memory when they fit, else a per-batch loader; and the labels."""
    samples = splits.samples(split)
    labels = np.array([s.label for s in samples], dtype=np.int64)
    if len(samples) * spec.height * spec.width * 3 <= IN_MEMORY_LIMIT:
        counter = progress.counter(f"decoding the {split} split") if progress else None
        return _decode_all(splits, samples, spec, counter), labels
    return _stream_loader(splits, samples, spec), labels


def train_image_classifier(data_dir: str | Path, options: ImageTrainOptions | None = None,
                           progress: TrainProgress | None = None) -> ImageTrainResult:
    """Split ``data_dir`` (one folder per class), train, evaluate on the test split and
    write the run directory. Returns a summary; the run dir holds the details.

    ``progress`` (optional) hears the dataset summary before training starts, then
    every step and epoch.

    Raises:
        DataError: ``data_dir`` is missing, or no training image is left after splitting.
    """
    from edgepose.data.images import build_image_splits

    options = options or ImageTrainOptions()
    options.validate()
    params, data, fit = options.model, options.data, options.training
    spec = get_backbone(params.backbone)
    size = params.input_size or spec.default_size
    alpha = spec.check(size, params.alpha)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError("dataset folder not found", data_dir)

    output = Path(options.output) if options.output else default_run_dir(data_dir, spec.name)
    check_run_dir(output, overwrite=options.overwrite)  # before minutes of scanning
    if progress is not None:
        progress.note(f"scanning {data_dir}: decoding every image once to verify it")
    report = build_image_splits(data_dir, seed=fit.seed, fractions=data.fractions,
                                strict=data.strict, check_leaks=True, dedupe=data.dedupe,
                                on_progress=progress.counter("decoding images")
                                if progress is not None else None)
    splits = report.splits
    if not splits.samples("train"):
        raise DataError("no training images after splitting", data_dir)
    preprocessing = ImagePreprocessing(size, size)
    resolved = ImageModelParams(**{**asdict(params), "input_size": size, "alpha": alpha})
    config = {
        "task": "image",
        "preprocessing": preprocessing.to_dict(),
        "dataset": str(data_dir.resolve()),
        "classes": splits.classes,
        "backbone": spec.name,
        "backbone_preprocessing": spec.preprocessing,
        "input_dtype": "float32",
        "input_range": [0, 255],
        "seed": fit.seed,
        "model": asdict(resolved),
        "data": asdict(data),
        "training": asdict(fit),
        "versions": versions(),
        "reproducibility": reproducibility(fit.deterministic),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }

    unfrozen: list[str] = []

    def stages(model: ImageClassifierModel) -> list[Stage]:
        if not model.pretrained:
            return [Stage("train", fit.epochs, fit.lr, schedule=fit.lr_schedule)]

        def start_fine_tuning() -> None:
            unfrozen.extend(unfreeze_backbone(model.backbone, top=fit.unfreeze_top,
                                              from_index=fit.freeze_until))

        return [Stage("feature_extraction", fit.epochs, fit.lr, schedule=fit.lr_schedule),
                Stage("fine_tune", fit.fine_tune_epochs, fit.fine_tune_lr, start_fine_tuning,
                      schedule=fit.lr_schedule)]

    outcome = train_run(
        output, overwrite=options.overwrite, config=config, splits=splits, fit=fit,
        class_weight=data.class_weight,
        build_model=lambda: build_image_model(len(splits.classes), resolved, seed=fit.seed),
        load_split=lambda split: _inputs(splits, split, preprocessing, progress),
        stages=stages, images=True, strict=data.strict, progress=progress,
        data_summary=report.summary())
    model, history, metrics = outcome.model, outcome.history, outcome.metrics

    return ImageTrainResult(
        run_dir=str(outcome.path), backbone=spec.name, input_size=size,
        classes=splits.classes,
        split_sizes={s: len(splits.samples(s)) for s in ("train", "val", "test")},
        weights=model.weights.summary(), weights_loaded_layers=model.weights.loaded_layers,
        unfrozen_layers=len(unfrozen), epochs=history.epochs,
        seconds=round(history.seconds, 2), images_per_second=round(history.images_per_second, 1),
        best=history.best(), metrics=metrics,
        data_summary=report.summary())
