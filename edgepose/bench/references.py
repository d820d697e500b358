"""Accuracy of a classifier on screened samples, and its drift against a reference.

The reference is the Keras outputs saved at conversion (``reference_outputs.npz``)
when they cover the samples, else the float32 TFLite model next to the model
(``--reference auto|keras|fp32|none``); each is computed or loaded once per folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgepose.bench.labelled_data import LabelledData, Screened, label_indices
from edgepose.errors import DataError
from edgepose.rundir import RunDir
from edgepose.runtime.classifier import Classifier
from edgepose.runtime.drift_stats import DriftStats, compare_outputs


def _all_probabilities(classifier: Classifier, files: Sequence[Path]) -> np.ndarray:
    return np.stack([classifier.predict(classifier.prepare(f)) for f in files])


class References:
    """Reference outputs per model folder, computed or loaded once per bench call."""

    def __init__(self, data: LabelledData, choice: str):
        self.data = data
        self.choice = choice
        self._cache: dict[Path, tuple[np.ndarray, str] | None] = {}

    def _saved(self, folder: Path) -> tuple[np.ndarray, str] | None:
        path = RunDir(self.data.run_dir or folder).reference_outputs_path
        if not path.is_file():
            path = RunDir(folder).reference_outputs_path
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as saved:
                paths = [str(p) for p in saved["paths"]]
                probs = np.asarray(saved["probabilities"], dtype=np.float32)
        except (KeyError, ValueError, OSError) as exc:
            raise DataError(f"not a reference outputs file ({exc})", path) from None
        row = {p: i for i, p in enumerate(paths)}
        if not all(k in row for k in self.data.keys):
            return None
        return probs[[row[k] for k in self.data.keys]], f"keras ({path.name})"

    def _fp32(self, folder: Path) -> tuple[np.ndarray, str] | None:
        path = RunDir(folder).tflite_path("fp32")
        if not path.is_file():
            return None
        reference = Classifier.from_file(path, num_threads=1)
        return _all_probabilities(reference, self.data.files), path.name

    def get(self, model_path: Path) -> tuple[np.ndarray, str] | None:
        """The ``(N x C probabilities, name)`` reference for the model, or None.

        Raises:
            DataError: no reference of an explicitly chosen kind (``keras``/``fp32``) for these
                samples, or a ``reference_outputs.npz`` that is not one.
        """
        folder = model_path.parent
        if folder not in self._cache:
            found = None
            if self.choice in ("auto", "keras"):
                found = self._saved(folder)
            if found is None and self.choice in ("auto", "fp32"):
                found = self._fp32(folder)
            if found is None and self.choice != "auto":
                raise DataError(f"no {self.choice} reference for the data next to the model",
                                folder)
            self._cache[folder] = found
        return self._cache[folder]


def accuracy_and_drift(classifier: Classifier, data: Screened, reference: str,
                       references: dict[str, References]
                       ) -> tuple[float | None, DriftStats | None, str | None]:
    """``(accuracy 0..1, drift or None, reference name or None)`` on ``data``.

    Raises:
        DataError: a class of the data is not a label of the model, an explicitly chosen reference
            is missing, or the reference outputs have another shape than the model's.
    """
    labels = label_indices(classifier, data.labelled)
    probabilities = np.stack([classifier.predict(x) for x in data.arrays])
    accuracy = float(np.mean(probabilities.argmax(1) == labels))
    if reference == "none":
        return accuracy, None, None
    key = f"{data.labelled.source} {hash(tuple(data.labelled.keys))}"  # same samples only
    refs = references.setdefault(key, References(data.labelled, reference))
    found = refs.get(classifier.model_path)
    if found is None:
        return accuracy, None, None
    ref_probs, name = found
    if ref_probs.shape != probabilities.shape:
        raise DataError(f"reference outputs have shape {ref_probs.shape}, the model gives "
                        f"{probabilities.shape}", classifier.model_path)
    drift = compare_outputs(ref_probs, probabilities, labels, classifier.labels)
    return accuracy, drift, name
