"""Is a trained model better than guessing? Checked on every split a run evaluates.

A run whose held-out accuracy is no better than always answering the most frequent
class, or that answers one class for everything, has learned nothing usable even
when its training accuracy looks fine (issue 11, section 7). Every trainer goes
through :func:`edgepose.train.trainer_steps.train_run`, which runs these checks, writes them
to ``metrics.json`` (field ``quality``), prints them on stderr and, with
``--strict``, raises :class:`TrainingAtChance`.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from edgepose.errors import EdgeposeError

# An accuracy within this many points of chance is "at chance" whatever the split size.
MIN_MARGIN = 0.05
# ... and within two binomial standard errors of chance, sqrt(p(1-p)/n), on small splits:
# an accuracy that close cannot be told from guessing at about 95% confidence.
STANDARD_ERRORS = 2.0


class TrainingAtChance(EdgeposeError):
    """``--strict``: a split's accuracy is at chance, or the model predicts one class."""

    exit_code = 3


@dataclass
class ChanceCheck:
    """One split's accuracy against the accuracy of guessing its most frequent class."""

    split: str
    samples: int
    accuracy: float
    chance: float  # share of the most frequent true class (>= 1 / number of classes)
    margin: float  # accuracy <= chance + margin counts as at chance
    predicted_classes: int  # distinct classes the model answered
    true_classes: int  # distinct classes present in the split
    near_chance: bool
    one_class: bool

    @property
    def failed(self) -> bool:
        return self.near_chance or self.one_class

    def message(self) -> str:
        """One line saying what is wrong (empty when nothing is)."""
        problems = []
        if self.near_chance:
            problems.append(f"accuracy {self.accuracy:.3f} is at chance ({self.chance:.3f} = "
                            f"always answering the most frequent class, margin "
                            f"{self.margin:.3f})")
        if self.one_class:
            problems.append("the model predicts one class for every sample")
        if not problems:
            return ""
        return f"{self.split} split ({self.samples} samples): {'; '.join(problems)}"


def chance_level(true_counts: np.ndarray) -> tuple[float, float]:
    """``(chance, margin)`` of a split with these per-class counts: the share of its most
    frequent class, and how close above it an accuracy still counts as guessing."""
    counts = np.asarray(true_counts, dtype=np.int64)
    samples = int(counts.sum())
    chance = float(counts.max()) / samples
    return chance, max(MIN_MARGIN, STANDARD_ERRORS * math.sqrt(chance * (1 - chance) / samples))


def chance_limit(labels: np.ndarray) -> float | None:
    """The accuracy at or below which ``labels`` (one class index per sample) are predicted
    no better than guessing (:func:`chance_level`); None for an empty split or one class."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels) if labels.size else np.zeros(0, np.int64)
    if np.count_nonzero(counts) < 2:
        return None
    chance, margin = chance_level(counts)
    return chance + margin


def check_confusion(split: str, confusion: list[list[int]] | np.ndarray) -> ChanceCheck:
    """:class:`ChanceCheck` from a confusion matrix (rows: true class, columns: predicted).

    Raises:
        ValueError: an empty confusion matrix (an empty split).
    """
    matrix = np.asarray(confusion, dtype=np.int64)
    samples = int(matrix.sum())
    if samples == 0:
        raise ValueError(f"the {split} split is empty")
    true_counts, predicted_counts = matrix.sum(axis=1), matrix.sum(axis=0)
    accuracy = float(np.trace(matrix)) / samples
    chance, margin = chance_level(true_counts)
    true_classes = int(np.count_nonzero(true_counts))
    predicted = int(np.count_nonzero(predicted_counts))
    return ChanceCheck(split=split, samples=samples, accuracy=round(accuracy, 6),
                       chance=round(chance, 6), margin=round(margin, 6),
                       predicted_classes=predicted, true_classes=true_classes,
                       near_chance=true_classes > 1 and accuracy <= chance + margin,
                       one_class=true_classes > 1 and predicted == 1)


@dataclass
class QualityReport:
    """The chance checks of a run (``metrics.json`` field ``quality``)."""

    checks: list[ChanceCheck] = field(default_factory=list)
    batchnorm: dict | None = None  # BatchNormReport of the final re-estimation, if any

    @property
    def ok(self) -> bool:
        return not any(check.failed for check in self.checks)

    @property
    def warnings(self) -> list[str]:
        return [check.message() for check in self.checks if check.failed]

    def to_dict(self) -> dict:
        return {"ok": self.ok, "warnings": self.warnings,
                "checks": [dict(vars(c), failed=c.failed) for c in self.checks],
                "batchnorm": self.batchnorm}


def print_warnings(report: QualityReport, stream: TextIO | None = None) -> None:
    """Each failed check as a loud ``WARNING`` line on stderr (JSON on stdout stays clean)."""
    stream = stream or sys.stderr
    for line in report.warnings:
        stream.write(f"WARNING: {line}: this model has not learned to tell the classes "
                     "apart\n")
    stream.flush()


def raise_if_failed(report: QualityReport, where: str) -> None:
    """``--strict``: :class:`TrainingAtChance` naming the first failed check.

    Raises:
        TrainingAtChance: some check failed (exit 3); names the first, and ``where``.
    """
    if not report.ok:
        raise TrainingAtChance(f"{report.warnings[0]} (--strict)", where)
