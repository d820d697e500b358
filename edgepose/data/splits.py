"""Train/val/test splits and their ``splits.json`` record.

The split is decided once, at training time, and saved next to the model so
that calibration (train split), drift checks and benchmarks (test split) all
use the same held-out data.

``splits.json``::

    {"task": "image", "root": "/abs/path/DATA", "seed": 0,
     "fractions": [0.7, 0.15, 0.15], "classes": ["cat", "dog"],
     "items": [{"path": "cat/001.jpg", "label": 0, "split": "train"}, ...]}

``path`` is relative to ``root``; ``label`` indexes ``classes``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgepose.errors import DataError
from edgepose.fileio import read_json, write_json

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    """One labelled example: a file (relative to the dataset root) and its class index."""

    path: str
    label: int
    split: str = "train"


@dataclass
class Splits:
    """A labelled dataset divided into train/val/test."""

    task: str
    root: str
    classes: list[str]
    items: list[Sample]
    seed: int = 0
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    extra: dict = field(default_factory=dict)  # e.g. keypoint layout, category

    def samples(self, split: str) -> list[Sample]:
        """The samples of one split, in a stable order.

        Raises:
            DataError: an unknown split name.
        """
        if split not in SPLIT_NAMES:
            raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_NAMES)}")
        return [s for s in self.items if s.split == split]

    def absolute(self, sample: Sample) -> Path:
        return Path(self.root) / sample.path

    def counts(self) -> dict[str, dict[str, int]]:
        """``{split: {class: n}}``, for reports."""
        out: dict[str, dict[str, int]] = {}
        for split in SPLIT_NAMES:
            c = Counter(self.classes[s.label] for s in self.items if s.split == split)
            out[split] = {name: c.get(name, 0) for name in self.classes}
        return out

    def save(self, path: str | Path) -> Path:
        data = asdict(self)
        data["fractions"] = list(self.fractions)
        return write_json(path, data)

    @classmethod
    def load(cls, path: str | Path) -> Splits:
        """Read a ``splits.json`` written by :meth:`save`.

        Raises:
            DataError: the file is missing, not JSON, or not an edgepose splits file.
        """
        data = read_json(path)
        try:
            items = [Sample(**item) for item in data["items"]]
            return cls(task=data["task"], root=data["root"], classes=list(data["classes"]),
                       items=items, seed=int(data.get("seed", 0)),
                       fractions=tuple(data.get("fractions", (0.7, 0.15, 0.15))),
                       extra=dict(data.get("extra", {})))
        except (KeyError, TypeError) as exc:
            raise DataError(f"not an edgepose splits file ({exc})", path) from None


def stratified_split(labels: list[int], fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                     seed: int = 0) -> list[str]:
    """Assign ``train``/``val``/``test`` to each index, per class, deterministically.

    Every class with at least 2 samples gets at least one test sample (so the
    held-out accuracy covers every class) and keeps at least one training
    sample; val may be empty for tiny classes.

    Raises:
        DataError: a negative fraction, or fractions that do not sum to 1.
    """
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise DataError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    assignment = [""] * len(labels)
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    for label in sorted(by_class):
        indices = np.array(by_class[label])
        rng.shuffle(indices)
        n = len(indices)
        # Every class keeps at least one training sample, whatever the fractions.
        n_test = min(max(1, round(n * fractions[2])), n - 1) if fractions[2] > 0 and n >= 2 else 0
        n_val = min(round(n * fractions[1]), n - n_test - 1) if n - n_test >= 3 else 0
        n_train = n - n_test - n_val
        for position, index in enumerate(indices):
            assignment[index] = ("train" if position < n_train else
                                 "val" if position < n_train + n_val else "test")
    return assignment
