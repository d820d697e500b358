"""Held-out evaluation of a Keras classifier, shared by the image and keypoint trainers.

Metrics come from scikit-learn (accuracy, per-class precision/recall/F1,
macro-F1, one-vs-rest ROC-AUC, confusion matrix); plots from matplotlib with
the Agg backend: ``confusion_matrix.png``, ``training_curves.png`` and, for
images, ``predictions.png`` (a grid of test images, green when right, red when wrong).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.errors import DataError, ModelError
from edgepose.fileio import atomic_path, write_json
from edgepose.train.chance import QualityReport, check_confusion


@dataclass
class ClassMetrics:
    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class EvaluationResult:
    """Metrics of one model on one split (written as metrics.json)."""

    split: str
    samples: int
    accuracy: float
    macro_f1: float
    roc_auc: float | None  # one-vs-rest macro; None when a class is missing from the split
    per_class: list[ClassMetrics]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class
    classes: list[str]
    plots: dict[str, str] = field(default_factory=dict)  # name -> file name in the run dir
    # chance checks (edgepose.train.chance.QualityReport.to_dict()): ok, warnings, checks
    quality: dict | None = None


def evaluate_predictions(y_true: np.ndarray, probabilities: np.ndarray, classes: list[str],
                         split: str = "test") -> EvaluationResult:
    """Metrics for class-probability predictions against integer labels."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y_true = np.asarray(y_true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(y_true) == 0:
        raise DataError(f"the {split} split is empty: nothing to evaluate")
    labels = list(range(len(classes)))
    y_pred = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    roc_auc = None
    if len(set(y_true.tolist())) == len(classes) and len(classes) > 1:
        scores = probabilities / probabilities.sum(axis=1, keepdims=True)
        roc_auc = float(roc_auc_score(y_true, scores[:, 1] if len(classes) == 2 else scores,
                                      multi_class="ovr", labels=labels))
    per_class = [ClassMetrics(name, float(p), float(r), float(f), int(s))
                 for name, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)]
    return EvaluationResult(
        split=split, samples=len(y_true), accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, labels=labels, average="macro",
                                zero_division=0)),
        roc_auc=roc_auc, per_class=per_class,
        confusion_matrix=confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        classes=list(classes))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path: Path) -> Path:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_confusion_matrix(result: EvaluationResult, path: str | Path) -> Path:
    """Confusion-matrix heat map with counts in the cells."""
    plt = _pyplot()
    matrix = np.array(result.confusion_matrix)
    n = len(result.classes)
    size = min(max(4.0, 0.5 * n + 2), 16)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), result.classes, rotation=90 if n > 6 else 0)
    ax.set_yticks(range(n), result.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{result.split}: accuracy {result.accuracy:.3f}, macro-F1 {result.macro_f1:.3f}")
    if n <= 30:
        top = matrix.max() if matrix.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if matrix[i, j] > top / 2 else "black")
    return _save_figure(fig, Path(path))


def plot_training_curves(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Loss and accuracy per epoch (train and validation), stages marked."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [r["epoch"] for r in rows]
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--o")):
            points = [(e, r[key]) for e, r in zip(epochs, rows, strict=True)
                      if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points, strict=True), style, label=key, markersize=3)
        for previous, row in zip(rows, rows[1:], strict=False):
            if row["stage"] != previous["stage"]:
                ax.axvline(previous["epoch"] + 0.5, color="grey", linestyle=":")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    return _save_figure(fig, Path(path))


def plot_prediction_grid(images: np.ndarray, y_true: np.ndarray, probabilities: np.ndarray,
                         classes: list[str], path: str | Path, *, max_images: int = 25,
                         seed: int = 0) -> Path:
    """A grid of images titled "predicted (score) / true", green if right, red if wrong."""
    plt = _pyplot()
    count = min(len(images), max_images)
    chosen = np.sort(np.random.default_rng(seed).choice(len(images), count, replace=False))
    cols = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, index in zip(axes.ravel(), chosen, strict=False):
        predicted = int(np.argmax(probabilities[index]))
        right = predicted == int(y_true[index])
        ax.imshow(np.asarray(images[index], dtype=np.uint8))
        ax.set_title(f"{classes[predicted]} ({probabilities[index][predicted]:.2f})\n"
                     f"true: {classes[int(y_true[index])]}", fontsize=8,
                     color="green" if right else "red")
    return _save_figure(fig, Path(path))


def predict_probabilities(model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Model outputs for ``x`` in batches (uint8 images are fed as float32 0..255)."""
    out = [np.asarray(model.predict_on_batch(np.asarray(x[i:i + batch_size], dtype=np.float32)))
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def evaluate_model(model, x: np.ndarray, y: np.ndarray, classes: list[str],
                   run_dir: str | Path, *, split: str = "test", images: bool = True,
                   batch_size: int = 64, seed: int = 0) -> EvaluationResult:
    """Predict ``x``, compute metrics, write metrics.json and the plots into ``run_dir``.

    A split other than ``test`` writes ``metrics_<split>.json`` and suffixed plots,
    so the test record is never overwritten. ``quality`` holds the split's chance check
    (:func:`edgepose.train.chance.check_confusion`).
    """
    from edgepose.train.run_writer import read_history

    run_dir = Path(run_dir)
    suffix = "" if split == "test" else f"_{split}"  # metrics.json stays the test record
    probabilities = predict_probabilities(model, x, batch_size)
    result = evaluate_predictions(y, probabilities, classes, split)
    result.quality = QualityReport([check_confusion(split, result.confusion_matrix)]).to_dict()
    name = f"confusion_matrix{suffix}.png"
    result.plots["confusion_matrix"] = plot_confusion_matrix(result, run_dir / name).name
    if (run_dir / "history.csv").is_file():
        rows = read_history(run_dir / "history.csv")
        if rows:
            path = plot_training_curves(rows, run_dir / "training_curves.png")
            result.plots["training_curves"] = path.name
    if images and x.ndim == 4:
        path = plot_prediction_grid(x, y, probabilities, classes,
                                    run_dir / f"predictions{suffix}.png", seed=seed)
        result.plots["predictions"] = path.name
    write_json(run_dir / f"metrics{suffix}.json", result)
    return result


def evaluate_run(run_dir: str | Path, split: str = "test", batch_size: int = 64
                 ) -> EvaluationResult:
    """``edgepose eval``: evaluate a run's model.keras on one of its splits."""
    import keras

    from edgepose.rundir import RunDir, load_inputs

    run = RunDir.open(run_dir)
    if not run.model_path.is_file():
        raise ModelError("no model.keras: the run is incomplete (see its INCOMPLETE file)",
                         run.path)
    config = run.config
    splits = run.splits
    x, y = load_inputs(splits, splits.samples(split), config)
    try:
        model = keras.saving.load_model(str(run.model_path), compile=False)
    except Exception as exc:
        raise ModelError(f"could not load ({str(exc).splitlines()[0][:200]})",
                         run.model_path) from None
    return evaluate_model(model, x, y, run.labels, run.path, split=split,
                          images=config["task"] == "image", batch_size=batch_size,
                          seed=int(config.get("seed", 0)))
