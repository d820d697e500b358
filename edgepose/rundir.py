"""A training run directory: the hand-off from ``train`` to ``convert`` and ``bench``.

``models/<run>/`` holds::

    model.keras     inference model: raw input in (RGB 0..255 or keypoints), probabilities out
    labels.txt      one class name per line, in output order
    splits.json     the train/val/test split (see edgepose.data.splits)
    config.json     every setting needed to reproduce the run (see RunConfig keys below)
    history.csv     per-epoch training log
    metrics.json    held-out test metrics of the Keras model
    model_<mode>.tflite / model_<mode>.json    written by `edgepose convert` (model + manifest)
    reference_outputs.npz   Keras test-split outputs, written by `edgepose convert`
    conversion_report.json / .md                written by `edgepose convert`

:class:`RunDir` owns these names: the trainer, the converter, the bench and the
benchmark scripts ask it for a path instead of spelling a file name.

``config.json`` always has ``task`` ("image" | "keypoints"); image runs have
``preprocessing`` (ImagePreprocessing.to_dict()), keypoint runs have
``keypoint_layout``. Device-safe: no TensorFlow import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.data.splits import Sample, Splits
from edgepose.errors import DataError
from edgepose.fileio import read_json
from edgepose.runtime.classifier import read_labels
from edgepose.runtime.preprocess import ImagePreprocessing, image_to_array


@dataclass
class RunDir:
    """Paths and records of one training run (the one owner of the folder's file names).

    ``RunDir(path)`` names files in any folder (a converted bare ``.keras`` file's
    folder too); :meth:`open` also checks the folder is a run directory.
    """

    path: Path

    CONFIG = "config.json"
    SPLITS = "splits.json"
    LABELS = "labels.txt"
    KERAS_MODEL = "model.keras"
    HISTORY = "history.csv"
    METRICS = "metrics.json"
    REFERENCE_OUTPUTS = "reference_outputs.npz"
    CONVERSION_REPORT = "conversion_report"  # + ".json" / ".md"
    MODEL_STEM = "model"  # converted models are model_<mode>.tflite, whatever the .keras is called
    # What a finished training run holds (see edgepose.train.rundir_writer).
    TRAINED_FILES = (CONFIG, KERAS_MODEL, LABELS, SPLITS, HISTORY, METRICS)

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """Open an existing run directory (it must contain config.json).

        Raises:
            DataError: ``path`` has no config.json: it is not an edgepose run directory.
        """
        path = Path(path)
        if not (path / cls.CONFIG).is_file():
            raise DataError(f"not an edgepose run directory (no {cls.CONFIG})", path)
        return cls(path)

    @classmethod
    def holds_splits(cls, path: str | Path) -> bool:
        """True when ``path`` has both the config and the splits of a training run."""
        return (Path(path) / cls.CONFIG).is_file() and (Path(path) / cls.SPLITS).is_file()

    @property
    def model_path(self) -> Path:
        return self.path / self.KERAS_MODEL

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def splits_path(self) -> Path:
        return self.path / self.SPLITS

    @property
    def labels_path(self) -> Path:
        return self.path / self.LABELS

    @property
    def reference_outputs_path(self) -> Path:
        return self.path / self.REFERENCE_OUTPUTS

    def conversion_report_path(self, suffix: str = ".json") -> Path:
        """``conversion_report.json`` (or ``.md`` with ``suffix=".md"``)."""
        return self.path / f"{self.CONVERSION_REPORT}{suffix}"

    def tflite_path(self, mode: str, stem: str = MODEL_STEM) -> Path:
        """``<stem>_<mode>.tflite``: the model ``edgepose convert`` writes for ``mode``."""
        return self.path / f"{stem}_{mode}.tflite"

    def manifest_path(self, mode: str, stem: str = MODEL_STEM) -> Path:
        """``<stem>_<mode>.json``: the manifest beside :meth:`tflite_path`."""
        return self.tflite_path(mode, stem).with_suffix(".json")

    @classmethod
    def mode_in_name(cls, model_path: str | Path) -> str | None:
        """The mode a file name states (``model_int8.tflite`` -> ``"int8"``), else None."""
        stem = Path(model_path).stem
        prefix = f"{cls.MODEL_STEM}_"
        return stem[len(prefix):] or None if stem.startswith(prefix) else None

    @property
    def config(self) -> dict[str, Any]:
        return read_json(self.config_path)

    @property
    def task(self) -> str:
        return self.config["task"]

    @property
    def labels(self) -> list[str]:
        return read_labels(self.labels_path)

    @property
    def splits(self) -> Splits:
        return Splits.load(self.splits_path)

    @property
    def preprocessing(self) -> ImagePreprocessing | None:
        spec = self.config.get("preprocessing")
        return ImagePreprocessing.from_dict(spec) if spec else None


def load_inputs(splits: Splits, samples: list[Sample], config: dict[str, Any]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs and labels for ``samples``, exactly as the device computes them.

    Images -> uint8 ``N x H x W x 3`` through the runtime's preprocessing;
    keypoint files -> float32 ``N x D`` through the keypoint loader.

    Raises:
        DataError: an unknown task in the config, or a sample that cannot be read.
    """
    labels = np.array([s.label for s in samples], dtype=np.int64)
    if config["task"] == "image":
        spec = ImagePreprocessing.from_dict(config["preprocessing"])
        x = np.zeros((len(samples), spec.height, spec.width, 3), dtype=np.uint8)
        for i, sample in enumerate(samples):
            image_to_array(splits.absolute(sample), spec, out=x[i])
        return x, labels
    if config["task"] == "keypoints":
        from edgepose.runtime.keypoint_file import load_keypoint_vector

        layout = config["keypoint_layout"]
        x = np.stack([load_keypoint_vector(splits.absolute(s), layout) for s in samples])
        return x.astype(np.float32), labels
    raise DataError(f"unknown task {config['task']!r} in {RunDir.CONFIG}")
