"""Held-out evaluation of a Keras classifier, shared by the image and keypoint trainers.

Metrics come from scikit-learn (accuracy, per-class precision/recall/F1,
macro-F1, one-vs-rest ROC-AUC, confusion matrix); plots from matplotlib with
the Agg backend: ``confusion_matrix.png``, ``training_curves.png``, ``roc_pr.png``
(the ROC and precision-recall curves behind the AUC) and, for images,
``predictions.png`` (a grid of test images, errors first in red, right in green).
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
    """Metrics for class-probability predictions against integer labels.

    Raises:
        DataError: the split is empty.
    """
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
    """Confusion-matrix heat map with counts in the cells (rows true, columns predicted).

    Column labels are turned 45 degrees (90 beyond 12 classes) when they would
    overlap written flat, measured with matplotlib's renderer.
    """
    plt = _pyplot()
    matrix = np.array(result.confusion_matrix)
    n = len(result.classes)
    longest = max((len(c) for c in result.classes), default=1)
    # Wide enough for the cells, plus room for the row labels' text.
    size = min(max(4.0, 0.5 * n + 2), 16)
    fig, ax = plt.subplots(figsize=(size + min(0.07 * longest, 3.0), size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), result.classes)
    ax.set_yticks(range(n), result.classes)
    _fit_tick_labels(fig, ax, steep=n > 12)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{result.split}: accuracy {result.accuracy:.3f}, macro-F1 {result.macro_f1:.3f}",
                 fontsize=10)
    if n <= 30:
        top = matrix.max() if matrix.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if matrix[i, j] > top / 2 else "black")
    return _save_figure(fig, Path(path))


def _overlapping(boxes) -> bool:
    """True when any two neighbouring bounding boxes (in order) overlap."""
    return any(a.overlaps(b) for a, b in zip(boxes, boxes[1:], strict=False))


def _fit_tick_labels(fig, ax, steep: bool = False) -> None:
    """Rotate the x tick labels (45, then 90 degrees) until no two of them overlap."""
    for angle in ((90,) if steep else (0, 45, 90)):
        for label in ax.get_xticklabels():
            label.set_rotation(angle)
            label.set_horizontalalignment("right" if angle == 45 else "center")
            label.set_rotation_mode("anchor" if angle == 45 else "default")
        fig.canvas.draw()  # places the labels
        renderer = fig.canvas.get_renderer()
        boxes = [label.get_window_extent(renderer) for label in ax.get_xticklabels()]
        if not _overlapping(boxes):
            return


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
            if row["stage"] != previous["stage"]:  # e.g. head -> fine-tune: say which
                ax.axvline(previous["epoch"] + 0.5, color="grey", linestyle=":")
                ax.text(previous["epoch"] + 0.5, 0.99, f" {row['stage']}", color="grey",
                        fontsize=7, va="top", transform=ax.get_xaxis_transform())
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    return _save_figure(fig, Path(path))


def prediction_grid_order(y_true: np.ndarray, probabilities: np.ndarray, max_images: int = 25,
                          seed: int = 0) -> np.ndarray:
    """Indices to show: every error first (most confident first), then right answers.

    The errors are what a reader looks for; right answers fill the remaining
    places in a seeded random order.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    predicted = np.argmax(probabilities, axis=1)
    confidence = np.max(probabilities, axis=1)
    wrong = np.flatnonzero(predicted != y_true)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    right = np.random.default_rng(seed).permutation(np.flatnonzero(predicted == y_true))
    return np.concatenate([wrong, right])[:max_images].astype(np.int64)


def plot_prediction_grid(images: np.ndarray, y_true: np.ndarray, probabilities: np.ndarray,
                         classes: list[str], path: str | Path, *, max_images: int = 25,
                         seed: int = 0) -> Path:
    """A grid of images titled "predicted (score) / true": errors first, in red; right in green.

    Order: :func:`prediction_grid_order`. The figure title counts the errors
    of the whole split and how many of them are shown.
    """
    plt = _pyplot()
    chosen = prediction_grid_order(y_true, probabilities, max_images, seed)
    count = len(chosen)
    errors = int(np.sum(np.argmax(probabilities, axis=1) != np.asarray(y_true)))
    cols = max(int(np.ceil(np.sqrt(count))), 1)
    rows = max(int(np.ceil(count / cols)), 1)
    fig, axes = plt.subplots(rows, cols, figsize=(max(2.2 * cols, 4.4), 2.4 * rows + 0.4),
                             squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, index in zip(axes.ravel(), chosen, strict=False):
        predicted = int(np.argmax(probabilities[index]))
        right = predicted == int(y_true[index])
        ax.imshow(np.asarray(images[index], dtype=np.uint8))
        ax.set_title(f"{classes[predicted]} ({probabilities[index][predicted]:.2f})\n"
                     f"true: {classes[int(y_true[index])]}", fontsize=8,
                     color="green" if right else "red")
    summary = (f"{errors} of {len(y_true)} wrong, shown first in red ({min(errors, count)} here)"
               if errors else f"all {len(y_true)} right")
    fig.suptitle(f"{summary}; each: predicted (score) / true", fontsize=9)
    return _save_figure(fig, Path(path))


def plot_roc_pr(y_true: np.ndarray, probabilities: np.ndarray, classes: list[str],
                path: str | Path) -> Path:
    """ROC and precision-recall curves, the source of the report's ``roc_auc``.

    Two classes: one curve for the second class (as ``roc_auc_score`` scores
    it). More: one-vs-rest per class; the title's macro AUC is their mean, which
    is what :func:`evaluate_predictions` reports (sklearn ``multi_class="ovr"``).
    Legends give each curve's ROC AUC and average precision.
    """
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    plt = _pyplot()
    y_true = np.asarray(y_true, dtype=np.int64)
    scores = np.asarray(probabilities, dtype=np.float64)
    scores = scores / scores.sum(axis=1, keepdims=True)
    positives = [1] if len(classes) == 2 else list(range(len(classes)))
    colours = _distinct_colours(len(positives))
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4.6))
    aucs = []
    for colour, k in zip(colours, positives, strict=True):
        truth = y_true == k
        if truth.all() or not truth.any():
            continue  # a one-sided split has no curve (and no AUC in the report)
        fpr, tpr, _ = roc_curve(truth, scores[:, k])
        aucs.append(auc(fpr, tpr))
        roc_ax.plot(fpr, tpr, color=colour, label=f"{classes[k]} (AUC {aucs[-1]:.3f})")
        precision, recall, _ = precision_recall_curve(truth, scores[:, k])
        ap = average_precision_score(truth, scores[:, k])
        pr_ax.plot(recall, precision, color=colour, drawstyle="steps-post",
                   label=f"{classes[k]} (AP {ap:.3f})")
        pr_ax.axhline(truth.mean(), color=colour, linestyle=":", linewidth=0.8)
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8, label="chance")
    kind = "one-vs-rest, macro AUC" if len(positives) > 1 else f"positive class {classes[1]}, AUC"
    roc_ax.set_title(f"ROC ({kind} {np.mean(aucs):.3f})" if aucs else "ROC", fontsize=10)
    roc_ax.set_xlabel("false positive rate")
    roc_ax.set_ylabel("true positive rate")
    pr_ax.set_title("precision-recall (dotted: chance = class share)", fontsize=10)
    pr_ax.set_xlabel("recall")
    pr_ax.set_ylabel("precision")
    for ax in (roc_ax, pr_ax):
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7, loc="lower right" if ax is roc_ax else "lower left")
    fig.tight_layout()
    return _save_figure(fig, Path(path))


def _distinct_colours(count: int) -> list:
    """``count`` colours, none repeated: tab10, tab20, then evenly spaced on turbo."""
    import matplotlib

    if count <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(count)]
    if count <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(count)]
    return [matplotlib.colormaps["turbo"](x) for x in np.linspace(0.05, 0.95, count)]


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
    from edgepose.train.rundir_writer import read_history

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
    if result.roc_auc is not None:  # the curves behind the AUC figure
        path = plot_roc_pr(y, probabilities, classes, run_dir / f"roc_pr{suffix}.png")
        result.plots["roc_pr"] = path.name
    write_json(run_dir / f"metrics{suffix}.json", result)
    return result


def evaluate_run(run_dir: str | Path, split: str = "test", batch_size: int = 64
                 ) -> EvaluationResult:
    """``edgepose eval``: evaluate a run's model.keras on one of its splits.

    Raises:
        ModelError: the run has no model.keras (it is incomplete), or it cannot be loaded.
    """
    from edgepose.keras_quiet import keras
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
