"""The steps every trainer shares: write the run directory, fit, save, evaluate.

A trainer (image, keypoints) decides the data, the model and the stages; this
module does the rest the same way for all of them, so every run directory has
the same files and the same guarantees (atomic files, INCOMPLETE marker until done).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgepose.data.balance import class_weights
from edgepose.data.splits import Splits
from edgepose.train.evaluation import EvaluationResult, evaluate_model
from edgepose.train.hyperparameters import TrainingParams
from edgepose.train.run_writer import RunWriter
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


def train_run(output: Path, *, overwrite: bool, config: dict, splits: Splits,
              fit: TrainingParams, class_weight: str, build_model: Callable[[], Any],
              load_split: SplitLoader, stages: Callable[[Any], list[Stage]],
              images: bool, progress: TrainProgress | None = None,
              data_summary: str = "") -> RunOutcome:
    """Write config/splits/labels, build and fit the model, save it and evaluate it.

    ``build_model()`` returns an object with ``.training`` and ``.inference`` Keras
    models (built inside the distribution strategy); ``stages(model)`` the fit
    stages. Evaluation uses the test split (val, then train, when it is empty).
    ``progress`` is told ``data_summary`` and the class weights before the first
    epoch, then every step and epoch.
    """
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
        history = fit_stages(model.training, train_batches, val_batches, stages(model),
                             writer.path, patience=fit.patience, strategy=strategy,
                             verbose=fit.verbose,
                             progress=progress.epochs if progress is not None else None)
        writer.write_history(history)
        writer.save_model(model.inference)

        eval_split = next(s for s in ("test", "val", "train") if splits.samples(s))
        note(f"evaluating on the {eval_split} split ({len(splits.samples(eval_split))} samples)")
        x_eval, y_eval = load_split(eval_split)
        if callable(x_eval):  # a streaming loader: evaluation wants the arrays
            x_eval = x_eval(np.arange(len(y_eval)))
        metrics = evaluate_model(model.inference, x_eval, y_eval, splits.classes, writer.path,
                                 split=eval_split, images=images, seed=fit.seed)
        if eval_split != "test":
            writer.write_metrics(metrics)
        writer.finish()
    return RunOutcome(writer.path, model, history, metrics)


def _describe_class_weights(weights: dict[int, float] | None, classes: list[str]) -> str:
    """One line: the loss weight of each class, or that every class weighs the same."""
    if not weights or all(abs(w - 1.0) < 1e-9 for w in weights.values()):
        return "class weights: none (every class weighs 1)"
    return "class weights: " + ", ".join(f"{classes[i]} {w:.2f}"
                                         for i, w in sorted(weights.items()))
