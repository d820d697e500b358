"""Train a pose-keypoint classifier: dataset, MLP, evaluation, run directory.

The exported ``model.keras`` takes raw keypoint vectors (float32, ``None x D``,
the layout's order, x/y normalised 0..1 to the image) and returns softmax
probabilities. Normalisation (body-centred by default, or per-sample z-score)
is inside the graph; mirror/rotation/scale/jitter augmentation lives only in
the training wrapper. The fit loop, run directory and evaluation are the ones
the image trainer uses (:mod:`edgepose.train.training`, ``run_writer``,
``evaluation``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import keras

from edgepose.data.layouts import KeypointLayout, get_layout
from edgepose.errors import ConfigError, DataError
from edgepose.train.evaluation import EvaluationResult
from edgepose.train.hyperparameters import DataParams, TrainingParams
from edgepose.train.keypoint_layers import (
    NORMALIZATIONS,
    KeypointAugmentation,
    coordinate_unit,
    normalization_model,
)
from edgepose.train.run import train_run
from edgepose.train.run_writer import default_run_dir, versions
from edgepose.train.training import Stage


@dataclass
class KeypointModelParams:
    """The keypoint MLP, its in-graph normalisation and its training-only augmentation."""

    layout: str = "coco17"
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    dropout: float = 0.3
    normalization: str = "body"  # body | zscore | none
    mirror: bool = True  # swap left/right joints (x -> 1 - x) on half the batches' samples
    rotation: float = 5.0  # degrees, +-
    scale: float = 0.1  # 1 +- scale
    jitter: float = 0.005  # std of per-joint noise, in image-normalised units
    # one coordinate unit in the data's units (1: 0..1, 512: pixels up to 512); None: read
    # from the training data (keypoint_layers.coordinate_unit)
    unit: float | None = None

    def validate(self) -> None:
        get_layout(self.layout)
        if not self.hidden or any(units < 1 for units in self.hidden):
            raise ConfigError("--hidden must list positive layer sizes, e.g. 256,128")
        if not 0 <= self.dropout < 1:
            raise ConfigError("--dropout must be in [0, 1)")
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(f"--normalization must be one of {', '.join(NORMALIZATIONS)}")
        if self.rotation < 0 or self.scale < 0 or self.jitter < 0:
            raise ConfigError("--rotation, --scale and --jitter must be >= 0")
        if self.unit is not None and not self.unit > 0:
            raise ConfigError(f"--unit must be a positive number, not {self.unit}")


def _keypoint_training_defaults() -> TrainingParams:
    return TrainingParams(epochs=100, batch_size=32, lr=1e-3, patience=20)


@dataclass
class KeypointTrainOptions:
    """Everything ``edgepose train keypoints`` needs besides the dataset folder."""

    model: KeypointModelParams = field(default_factory=KeypointModelParams)
    data: DataParams = field(default_factory=DataParams)
    training: TrainingParams = field(default_factory=_keypoint_training_defaults)
    category: str | None = None  # one category folder; None: all of them
    output: str | None = None
    overwrite: bool = False

    def validate(self) -> None:
        self.model.validate()
        self.data.validate()
        self.training.validate()
        if self.training.fine_tune_epochs:
            raise ConfigError("--fine-tune-epochs applies to image backbones, not keypoints")


@dataclass
class KeypointClassifierModel:
    """The inference model (saved) and the training wrapper (augmentation + inference)."""

    inference: keras.Model
    training: keras.Model
    layout: KeypointLayout


def build_keypoint_model(num_classes: int, params: KeypointModelParams, seed: int = 0
                         ) -> KeypointClassifierModel:
    """Normalisation -> [Dense -> BatchNorm -> ReLU6 -> Dropout] x N -> softmax."""
    layout = get_layout(params.layout)
    inputs = keras.Input((layout.size,), name="keypoints")
    unit = params.unit or 1.0
    x = normalization_model(layout, params.normalization, unit=unit)(inputs)
    for i, units in enumerate(params.hidden):
        x = keras.layers.Dense(units, use_bias=False, name=f"dense_{i}")(x)
        # momentum 0.9: keypoint datasets are small, few steps per epoch; the default
        # 0.99 would leave the inference statistics near their initial values.
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn_{i}")(x)
        x = keras.layers.ReLU(max_value=6.0, name=f"relu6_{i}")(x)
        if params.dropout:
            x = keras.layers.Dropout(params.dropout, seed=seed + 10 + i, name=f"dropout_{i}")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    inference = keras.Model(inputs, outputs, name=f"edgepose_keypoints_{layout.name}")

    train_inputs = keras.Input((layout.size,), name="keypoints")
    augmented = train_inputs
    if params.mirror or params.rotation or params.scale or params.jitter:
        augmented = KeypointAugmentation.for_layout(
            layout, mirror=0.5 if params.mirror else 0.0, rotation=params.rotation,
            scale=params.scale, jitter=params.jitter, seed=seed, unit=unit)(train_inputs)
    training = keras.Model(train_inputs, inference(augmented), name="training")
    return KeypointClassifierModel(inference, training, layout)


@dataclass
class KeypointTrainResult:
    """What ``edgepose train keypoints`` did and where it put it."""

    run_dir: str
    layout: str
    category: str | None
    classes: list[str]
    split_sizes: dict[str, int]
    problems: list[str]
    skipped: int
    parameters: int
    epochs: int
    seconds: float
    samples_per_second: float
    best: dict | None
    metrics: EvaluationResult


def train_keypoint_classifier(data_dir: str | Path, options: KeypointTrainOptions | None = None
                              ) -> KeypointTrainResult:
    """Split ``data_dir`` (JSON class folders or CSV), train the MLP, evaluate on the test
    split and write the run directory."""
    from edgepose.data.keypoints import build_keypoint_splits
    from edgepose.rundir import load_inputs

    options = options or KeypointTrainOptions()
    options.validate()
    params, data, fit = options.model, options.data, options.training
    data_dir = Path(data_dir)
    report = build_keypoint_splits(data_dir, layout=params.layout, category=options.category,
                                   seed=fit.seed, fractions=data.fractions, strict=data.strict)
    splits = report.splits
    if not splits.samples("train"):
        raise DataError("no training samples after splitting", data_dir)
    category = splits.extra.get("category")
    if params.unit is None:
        x_train, _ = load_inputs(splits, splits.samples("train"),
                                 {"task": "keypoints", "keypoint_layout": params.layout})
        params = replace(params, unit=coordinate_unit(x_train, get_layout(params.layout)))
    unit_text = ("x, y normalised 0..1 by image width/height" if params.unit == 1.0 else
                 f"x, y in pixels (unit {params.unit:g})")
    config = {
        "task": "keypoints",
        "keypoint_layout": params.layout,
        "dataset": str(data_dir.resolve()),
        "category": category,
        "classes": splits.classes,
        "input_dtype": "float32",
        "input_description": f"flat keypoint vector in the layout's order; {unit_text}",
        "keypoint_unit": params.unit,
        "seed": fit.seed,
        "model": asdict(params),
        "data": asdict(data),
        "training": asdict(fit),
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    name = f"keypoints-{params.layout}" + (f"-{category}" if category else "")
    output = Path(options.output) if options.output else default_run_dir(data_dir, name)

    outcome = train_run(
        output, overwrite=options.overwrite, config=config, splits=splits, fit=fit,
        class_weight=data.class_weight,
        build_model=lambda: build_keypoint_model(len(splits.classes), params, seed=fit.seed),
        load_split=lambda split: load_inputs(splits, splits.samples(split), config),
        stages=lambda model: [Stage("train", fit.epochs, fit.lr)], images=False)
    model, history, metrics = outcome.model, outcome.history, outcome.metrics

    return KeypointTrainResult(
        run_dir=str(outcome.path), layout=params.layout, category=category,
        classes=splits.classes,
        split_sizes={s: len(splits.samples(s)) for s in ("train", "val", "test")},
        problems=[str(p) for p in report.problems], skipped=report.skipped,
        parameters=int(model.inference.count_params()), epochs=history.epochs,
        seconds=round(history.seconds, 2),
        samples_per_second=round(history.images_per_second, 1), best=history.best(),
        metrics=metrics)
