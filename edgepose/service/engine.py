"""Turn one RGB frame into class probabilities.

An image model classifies the frame directly. A keypoint model first needs a
person: the pose model finds one and returns their keypoints in the
classifier's layout order; a frame with nobody in it gives ``None``, which the
service reports as ``no_person`` (a result, not an error).

The pose estimator is reached through :func:`load_pose` and used only through
``estimate(rgb) -> PoseResult | None`` (``.vector(layout)`` or ``.keypoints``,
and ``.score``), so any object with that method works.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgepose.errors import ConfigError, RuntimeNotAvailable
from edgepose.runtime.classifier import Classifier

log = logging.getLogger("edgepose.service")


class PoseEstimatorLike(Protocol):
    def estimate(self, rgb: np.ndarray) -> Any: ...


@dataclass
class Inference:
    """Probabilities for one frame (None: the pose model found nobody)."""

    probabilities: np.ndarray | None
    person: bool | None = None
    extra: dict = field(default_factory=dict)


def load_pose(landmark_model: str | Path, detector_model: str | Path | None = None,
              threads: int | str | None = None) -> PoseEstimatorLike:
    """Load edgepose's pose estimator (imported only for keypoint models).

    ``threads`` as ``--threads``: a count for both models, or ``"auto"``, which times
    each model on its own (the landmark model is the heavy one; a detector may
    want fewer threads) and logs what it chose.

    Raises:
        RuntimeNotAvailable: the pose estimator package cannot be imported.
        ModelError: a model file cannot be loaded.
    """
    try:
        from edgepose.pose import PoseEstimator
    except ImportError as exc:
        raise RuntimeNotAvailable(f"the pose estimator is not available ({exc})") from None
    estimator = PoseEstimator.from_files(landmark_model, detector_model, threads)
    for name, choice in estimator.thread_choices.items():
        log.info("threads for %s %s", name, choice)
    return estimator


class Engine:
    """A classifier (and for keypoint models, a pose estimator) behind one lock.

    The interpreter is not thread-safe; the loop and ``POST /classify`` share it.
    """

    def __init__(self, classifier: Classifier, pose: PoseEstimatorLike | None = None):
        self.classifier = classifier
        self.task = classifier.task
        if self.task == "keypoints" and pose is None:
            raise ConfigError("this is a keypoint model: give the pose model with --pose-model")
        if self.task != "keypoints" and classifier.preprocessing is None:
            raise ConfigError(f"{classifier.model_path}: the model does not take images and its "
                              "manifest does not say it takes keypoints")
        self.pose = pose if self.task == "keypoints" else None
        self.layout = self._keypoint_layout() if self.pose is not None else None
        self._lock = threading.Lock()

    def _keypoint_layout(self) -> str | None:
        """The manifest's layout, or the one whose vector length fits the model input."""
        manifest = self.classifier.manifest
        if manifest is not None and manifest.keypoint_layout:
            return manifest.keypoint_layout
        from edgepose.runtime.layouts import layout_for_length

        layout = layout_for_length(int(np.prod(self.classifier.input_shape[1:])))
        return layout.name if layout is not None else None

    @property
    def labels(self) -> list[str]:
        return self.classifier.labels

    @property
    def input_size(self) -> tuple[int, int]:
        """``(width, height)`` worth asking the camera for."""
        spec = self.classifier.preprocessing
        if self.pose is None and spec is not None:
            return spec.width, spec.height
        return 320, 240  # the pose model resizes internally; keep the person recognisable

    def infer(self, rgb: np.ndarray) -> Inference:
        with self._lock:
            if self.pose is None:
                return Inference(self.classifier.predict(self.classifier.prepare_image(rgb)))
            found = self.pose.estimate(rgb)
            if found is None:
                return Inference(None, person=False)
            if self.layout is not None and hasattr(found, "vector"):
                keypoints = found.vector(self.layout)
            else:
                keypoints = np.asarray(found.keypoints, dtype=np.float32).reshape(-1)
            nobody = self.classifier.no_person(keypoints)  # too few joints seen: no person
            if nobody:
                return Inference(None, person=False, extra={"no_person": nobody})
            probabilities = self.classifier.predict(keypoints)
            return Inference(probabilities, person=True,
                             extra={"pose_score": round(float(found.score), 4)})
