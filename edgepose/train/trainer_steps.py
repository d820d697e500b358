"""The steps every trainer shares: write the run directory, fit, save, evaluate.

A trainer (image, keypoints) decides the data, the model and the stages; this
module does the rest the same way for all of them, so every run directory has
the same files and the same guarantees (atomic files, INCOMPLETE marker until done).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgepose.data.balance import class_weights
from edgepose.data.splits import Splits
from edgepose.train.batchnorm import (
    RecalibrateBatchNorm,
    needs_recalibration,
)
from edgepose.train.chance import (
    QualityReport,
    chance_limit,
    check_confusion,
    print_warnings,
    raise_if_failed,
)
from edgepose.train.evaluation import (
    EvaluationResult,
    evaluate_model,
    evaluate_predictions,
    predict_probabilities,
)
from edgepose.train.hyperparameters import TrainingParams
from edgepose.train.rundir_writer import RunWriter
from edgepose.train.training import (
    Stage,
    TrainingHistory,
    fit_stages,
    make_batches,
    make_strategy,
    seed_everything,
)

if TYPE_CHECKING:
    from edgepose.train.progress import TrainProgress

# split name -> (inputs: array or per-batch loader, labels)
SplitLoader = Callable[[str], tuple[Any, np.ndarray]]


@dataclass
class RunOutcome:
    """What :func:`train_run` produced; the run directory holds the details."""

    path: Path
    model: Any  # the trainer's model object (has .training and .inference)
    history: TrainingHistory
    metrics: EvaluationResult
    quality: QualityReport


def _arrays(x: Any, count: int) -> np.ndarray:
    """A split's inputs as an array (a streaming loader reads them all)."""
    return x(np.arange(count)) if callable(x) else x


def train_run(output: Path, *, overwrite: bool, config: dict, splits: Splits,
              fit: TrainingParams, class_weight: str, build_model: Callable[[], Any],
              load_split: SplitLoader, stages: Callable[[Any], list[Stage]],
              images: bool, strict: bool | None = None, progress: TrainProgress | None = None,
              data_summary: str = "") -> RunOutcome:
    """Write config/splits/labels, build and fit the model, save it and evaluate it.

    ``build_model()`` returns an object with ``.training`` and ``.inference`` Keras
    models (built inside the distribution strategy); ``stages(model)`` the fit
    stages. Evaluation uses the test split (val, then train, when it is empty).

    BatchNorm moving statistics are re-estimated on (un-augmented) training data
    before every validation and before the model is saved (:mod:`edgepose.train.batchnorm`).
    The validation and evaluation splits are checked against chance
    (:mod:`edgepose.train.chance`): failures are printed on stderr and recorded in
    ``metrics.json`` (``quality``); with ``strict`` (default: the run's ``data.strict``)
    the complete run then raises :class:`~edgepose.train.chance.TrainingAtChance`.
    ``progress`` is told ``data_summary`` and the class weights before the first
    epoch, then every step and epoch.
    """
    if strict is None:
        strict = bool(config.get("data", {}).get("strict", False))
    note = progress.note if progress is not None else (lambda text: None)
    with RunWriter(output, overwrite=overwrite) as writer:
        if writer.replaced_incomplete:
            note(f"replaced the unfinished run in {writer.path}")
        if data_summary:
            note(data_summary)
        weights = class_weights(splits, mode=class_weight)
        note(_describe_class_weights(weights, splits.classes))
        writer.write_config(config)
        writer.write_splits(splits)
        writer.write_labels(splits.classes)

        seed_everything(fit.seed, fit.deterministic)
        strategy = make_strategy(fit.strategy)
        with strategy.scope():
            model = build_model()

        note(f"loading {len(splits.samples('train'))} training and "
             f"{len(splits.samples('val'))} validation samples")
        x_train, y_train = load_split("train")
        train_batches = make_batches(x_train, y_train, fit.batch_size, shuffle=True,
                                     seed=fit.seed, class_weight=weights)
        val_batches = None
        if splits.samples("val"):
            x_val, y_val = load_split("val")
            val_batches = make_batches(x_val, y_val, fit.batch_size)
        recalibrate = (RecalibrateBatchNorm(model.inference, x_train, len(y_train),
                                            fit.batch_size, seed=fit.seed)
                       if needs_recalibration(model.inference) else None)
        history = fit_stages(model.training, train_batches, val_batches, stages(model),
                             writer.path, patience=fit.patience, strategy=strategy,
                             verbose=fit.verbose,
                             extra_callbacks=[recalibrate] if recalibrate else [],
                             progress=progress.epochs if progress is not None else None,
                             chance_limit=chance_limit(y_val) if val_batches is not None else None)
        quality = QualityReport()
        if recalibrate is not None:  # the final weights (maybe restored by EarlyStopping)
            quality.batchnorm = asdict(recalibrate.run())
        writer.write_history(history)
        writer.save_model(model.inference)

        if val_batches is not None:
            probabilities = predict_probabilities(model.inference, _arrays(x_val, len(y_val)))
            val_metrics = evaluate_predictions(y_val, probabilities, splits.classes, "val")
            quality.checks.append(check_confusion("val", val_metrics.confusion_matrix))
        eval_split = next(s for s in ("test", "val", "train") if splits.samples(s))
        note(f"evaluating on the {eval_split} split ({len(splits.samples(eval_split))} samples)")
        x_eval, y_eval = load_split(eval_split)
        x_eval = _arrays(x_eval, len(y_eval))  # evaluation wants the arrays
        metrics = evaluate_model(model.inference, x_eval, y_eval, splits.classes, writer.path,
                                 split=eval_split, images=images, seed=fit.seed)
        if eval_split != "val" or val_batches is None:
            quality.checks.append(check_confusion(eval_split, metrics.confusion_matrix))
        metrics.quality = quality.to_dict()
        writer.write_metrics(metrics)  # metrics.json: the evaluation split, with quality
        writer.finish()
    print_warnings(quality)
    if strict:
        raise_if_failed(quality, writer.path / "metrics.json")
    return RunOutcome(writer.path, model, history, metrics, quality)


def _describe_class_weights(weights: dict[int, float] | None, classes: list[str]) -> str:
    """One line: the loss weight of each class, or that every class weighs the same."""
    if not weights or all(abs(w - 1.0) < 1e-9 for w in weights.values()):
        return "class weights: none (every class weighs 1)"
    return "class weights: " + ", ".join(f"{classes[i]} {w:.2f}"
                                         for i, w in sorted(weights.items()))
