"""A training run directory: the hand-off from ``train`` to ``convert`` and ``bench``.

``models/<run>/`` holds::

    model.keras     inference model: raw input in (RGB 0..255 or keypoints), probabilities out
    labels.txt      one class name per line, in output order
    splits.json     the train/val/test split (see edgepose.data.splits)
    config.json     every setting needed to reproduce the run (see RunConfig keys below)
    history.csv     per-epoch training log
    metrics.json    held-out test metrics of the Keras model
    model_<mode>.tflite / model_<mode>.json    written by `edgepose convert`

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
    """Paths and records of one training run."""

    path: Path

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """Open an existing run directory (it must contain config.json)."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise DataError("not an edgepose run directory (no config.json)", path)
        return cls(path)

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    @property
    def config(self) -> dict[str, Any]:
        return read_json(self.path / "config.json")

    @property
    def task(self) -> str:
        return self.config["task"]

    @property
    def labels(self) -> list[str]:
        return read_labels(self.path / "labels.txt")

    @property
    def splits(self) -> Splits:
        return Splits.load(self.path / "splits.json")

    @property
    def preprocessing(self) -> ImagePreprocessing | None:
        spec = self.config.get("preprocessing")
        return ImagePreprocessing.from_dict(spec) if spec else None

    def tflite_path(self, mode: str) -> Path:
        return self.path / f"model_{mode}.tflite"


def load_inputs(splits: Splits, samples: list[Sample], config: dict[str, Any]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs and labels for ``samples``, exactly as the device computes them.

    Images -> uint8 ``N x H x W x 3`` through the runtime's preprocessing;
    keypoint files -> float32 ``N x D`` through the keypoint loader.
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
    raise DataError(f"unknown task {config['task']!r} in config.json")
