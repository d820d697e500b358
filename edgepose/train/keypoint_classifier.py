"""Train a pose-keypoint classifier: dataset, MLP, evaluation, run directory.

The exported ``model.keras`` takes raw keypoint vectors (float32, ``None x D``,
the layout's order, x/y normalised 0..1 to the image) and returns softmax
probabilities. Normalisation (body-centred by default, or per-sample z-score)
is inside the graph; mirror/rotation/scale/jitter augmentation lives only in
the training wrapper. The fit loop, run directory and evaluation are the ones
the image trainer uses (:mod:`edgepose.train.training`, ``rundir_writer``,
``evaluation``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from edgepose.errors import ConfigError, DataError
from edgepose.keras_quiet import keras
from edgepose.runtime.layouts import DEFAULT_LAYOUT, KeypointLayout, get_layout
from edgepose.train.evaluation import EvaluationResult
from edgepose.train.hyperparameters import DataParams, TrainingParams
from edgepose.train.keypoint_layers import (
    NORMALIZATIONS,
    KeypointAugmentation,
    coordinate_unit,
    normalization_model,
)
from edgepose.train.progress import TrainProgress
from edgepose.train.rundir_writer import default_run_dir, versions
from edgepose.train.trainer_steps import train_run
from edgepose.train.training import Stage


@dataclass
class KeypointModelParams:
    """The keypoint MLP, its in-graph normalisation and its training-only augmentation."""

    layout: str | None = None  # None: the layout the files record, else the one of their length
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
        """Check the keypoint MLP and its augmentation.

        Raises:
            ConfigError: bad ``--hidden`` sizes, dropout outside [0, 1), an unknown normalization,
                negative augmentation, or a non-positive ``--unit``.
        """
        if self.layout is not None:
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


AUTO_FIT = ("batch_size", "epochs", "patience")
# Optimizer steps the size-based defaults aim for (see fit_for_size).
TARGET_STEPS = 2000
PATIENCE_STEPS = 500


def fit_for_size(train_samples: int) -> dict[str, int]:
    """Batch size, epochs and EarlyStopping patience for ``train_samples`` keypoint vectors.

    Keypoint sets run from ~50 samples (a seed project's first recordings) to
    ~50,000. A fixed batch of 32 and patience of 20 epochs gives 56 samples
    two optimizer steps per epoch: BatchNorm's moving statistics and the
    weights barely move before EarlyStopping gives up, and the restored
    "best" weights can be the first epoch's (50% test accuracy). So the
    schedule is set in optimizer steps, not epochs:

    - batch: the power of two nearest ``n / 8`` (at least ~8 steps per epoch),
      8..128;
    - epochs: enough for ~2,000 steps, 40..250 (56 samples: 250 epochs of 7
      steps; 35,000: 40 epochs of 274 steps);
    - patience: ~500 steps without a better validation loss, 10..40 epochs.
    """
    n = max(int(train_samples), 1)
    batch = int(min(max(2 ** round(math.log2(max(n / 8, 1))), 8), 128))
    steps = math.ceil(n / batch)
    return {"batch_size": batch,
            "epochs": int(min(max(math.ceil(TARGET_STEPS / steps), 40), 250)),
            "patience": int(min(max(math.ceil(PATIENCE_STEPS / steps), 10), 40))}


@dataclass
class KeypointTrainOptions:
    """Everything ``edgepose train keypoints`` needs besides the dataset folder.

    ``training=None`` means learning rate 1e-3 and the :data:`AUTO_FIT` fields
    chosen by :func:`fit_for_size` from the training-split size. ``auto_fit``
    names the :class:`TrainingParams` fields to choose that way (the CLI passes
    the ones the user did not give); by default all of them when ``training``
    is None, none when it is given.
    """

    model: KeypointModelParams = field(default_factory=KeypointModelParams)
    data: DataParams = field(default_factory=DataParams)
    training: TrainingParams | None = None
    category: str | None = None  # one category folder; None: all of them
    output: str | None = None
    overwrite: bool = False
    auto_fit: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.auto_fit is None:
            self.auto_fit = AUTO_FIT if self.training is None else ()
        if self.training is None:
            self.training = TrainingParams(lr=1e-3)
        unknown = set(self.auto_fit) - set(AUTO_FIT)
        if unknown:
            raise ConfigError(f"auto_fit takes {', '.join(AUTO_FIT)}, not "
                              f"{', '.join(sorted(unknown))}")

    def resolve_fit(self, train_samples: int) -> TrainingParams:
        """The training parameters with the ``auto_fit`` fields chosen for the data size."""
        chosen = fit_for_size(train_samples)
        return replace(self.training, **{name: chosen[name] for name in self.auto_fit})

    def validate(self) -> None:
        """Check every part of the keypoint training options.

        Raises:
            ConfigError: ``--fine-tune-epochs`` (image backbones only), or any part invalid.
        """
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
    layout = get_layout(params.layout or DEFAULT_LAYOUT)
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
    unit: float = 1.0  # one coordinate unit in the data's units (config.json keypoint_unit)
    fit: dict = field(default_factory=dict)  # batch_size, epochs, patience, lr used


def train_keypoint_classifier(data_dir: str | Path, options: KeypointTrainOptions | None = None,
                              progress: TrainProgress | None = None) -> KeypointTrainResult:
    """Split ``data_dir`` (JSON class folders or CSV), train the MLP, evaluate on the test
    split and write the run directory.

    ``progress`` (optional) hears the dataset summary and the files left out before
    training starts, then every epoch (:mod:`edgepose.train.progress`).

    Raises:
        DataError: the dataset cannot be read, or no training sample is left after splitting.
    """
    from edgepose.data.keypoints import build_keypoint_splits, detect_layout
    from edgepose.rundir import load_inputs

    options = options or KeypointTrainOptions()
    options.validate()
    params, data = options.model, options.data
    data_dir = Path(data_dir)
    if params.layout is None:
        params = replace(params, layout=detect_layout(data_dir, options.category))
    report = build_keypoint_splits(data_dir, layout=params.layout, category=options.category,
                                   seed=options.training.seed, fractions=data.fractions,
                                   strict=data.strict)
    splits = report.splits
    if not splits.samples("train"):
        raise DataError("no training samples after splitting", data_dir)
    fit = options.resolve_fit(len(splits.samples("train")))
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
        "training_chosen_for_size": list(options.auto_fit),
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
        stages=lambda model: [Stage("train", fit.epochs, fit.lr,
                                      schedule=fit.lr_schedule)], images=False,
        progress=progress, data_summary=report.summary())
    model, history, metrics = outcome.model, outcome.history, outcome.metrics

    return KeypointTrainResult(
        run_dir=str(outcome.path), layout=params.layout, category=category,
        classes=splits.classes,
        split_sizes={s: len(splits.samples(s)) for s in ("train", "val", "test")},
        problems=[str(p) for p in report.problems], skipped=report.skipped,
        parameters=int(model.inference.count_params()), epochs=history.epochs,
        seconds=round(history.seconds, 2),
        samples_per_second=round(history.images_per_second, 1), best=history.best(),
        metrics=metrics, unit=float(params.unit),
        fit={"batch_size": fit.batch_size, "epochs": fit.epochs, "patience": fit.patience,
             "lr": fit.lr, "chosen_for_size": list(options.auto_fit)})


def train_keypoint_categories(data_dir: str | Path, options: KeypointTrainOptions | None = None,
                              categories: list[str] | None = None,
                              progress: TrainProgress | None = None
                              ) -> list[KeypointTrainResult]:
    """One model per category of ``data_dir/<category>/<class>/*.json``, in one call.

    ``categories`` None: every category of the dataset
    (:func:`edgepose.data.keypoints.keypoint_categories`); an unknown name
    raises :class:`DataError` listing the ones found, before anything trains.
    Each category gets its own run directory: ``options.output/<category>``
    when an output folder is given, else the default
    ``models/<dataset>-keypoints-<layout>-<category>-<time>``.

    Raises:
        DataError: an unknown category (the message lists the ones found).
    """
    from edgepose.data.keypoints import keypoint_categories

    options = options or KeypointTrainOptions()
    found = keypoint_categories(data_dir)
    wanted = list(dict.fromkeys(categories)) if categories else found
    missing = [c for c in wanted if c not in found]
    if missing:
        raise DataError(f"no category {', '.join(map(repr, missing))}; found "
                        f"{', '.join(found)}", data_dir)
    results = []
    for category in wanted:
        output = (str(Path(options.output) / category) if options.output and len(wanted) > 1
                  else options.output)
        if progress is not None:
            progress.note(f"category {category} ({len(results) + 1} of {len(wanted)})")
        results.append(train_keypoint_classifier(
            data_dir, replace(options, category=category, output=output), progress))
    return results
