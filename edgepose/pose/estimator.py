"""One person's pose from one RGB image: detector (optional) + landmark model.

The same code runs on the workstation (``edgepose keypoints extract``) and in
the camera service on the Pi: numpy, Pillow and the TFLite interpreter only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edgepose.pose.detector import PoseDetector, Roi
from edgepose.pose.landmarks import LandmarkModel
from edgepose.runtime.layouts import VISIBLE, get_layout
from edgepose.runtime.preprocess import as_rgb_image
from edgepose.runtime.threads import resolve_threads

PRESENCE_THRESHOLD = 0.5


@dataclass
class PoseResult:
    """One detected person.

    ``keypoints``: 33 x 4 float32, MediaPipe landmark order, columns x, y
    (normalised 0..1 by image width and height, origin top-left), z (depth
    relative to the hips, roughly in units of image width) and visibility (0..1).
    ``score``: the detector's score, or the landmark model's pose-presence score
    when no detector is used. ``box``: (xmin, ymin, xmax, ymax) normalised to
    the image: the detector's box, or the landmarks' bounding box without one.
    """

    keypoints: np.ndarray
    score: float
    box: tuple[float, float, float, float]
    presence: float = 1.0
    roi: Roi | None = None

    def vector(self, layout_name: str) -> np.ndarray:
        """The classifier input: float32 1-D vector in ``layout_name``'s order.

        In 2-channel layouts a joint MediaPipe does not see (visibility < 0.5, e.g.
        legs below the frame, whose coordinates the model guesses) is written as
        missing, ``(0, 0)``, the convention those layouts use
        (:mod:`edgepose.runtime.layouts`); mediapipe33 keeps the visibility itself.
        """
        return get_layout(layout_name).from_landmarks(self.keypoints, visible=VISIBLE)


class PoseEstimator:
    """BlazePose: person detector (optional) then 33 landmarks on the person's region.

    Without a detector the landmark model sees a centred square of side
    max(width, height) (the whole image, padded), so it fits one person who
    fills most of the frame.
    """

    def __init__(self, landmarks: LandmarkModel, detector: PoseDetector | None = None):
        self.landmarks = landmarks
        self.detector = detector
        # file name -> ThreadChoice.describe(), for each model ``--threads auto`` timed
        self.thread_choices: dict[str, str] = {}

    @classmethod
    def from_files(cls, landmark_model: str | Path, detector_model: str | Path | None = None,
                   num_threads: int | str | None = None) -> PoseEstimator:
        """Load ``pose_landmark_*.tflite`` and optionally ``pose_detection.tflite``.

        ``num_threads``: a count for both, None (the runtime's default), or ``"auto"``:
        each model timed on its own (:func:`edgepose.runtime.threads.choose_threads`;
        the landmark model is the heavy one), the choices in :attr:`thread_choices`.
        """
        choices: dict[str, str] = {}

        def threads_for(path: str | Path) -> int | None:
            count, choice = resolve_threads(num_threads, path)
            if choice is not None:
                choices[Path(path).name] = choice.describe()
            return count

        detector = (PoseDetector.from_file(detector_model, threads_for(detector_model))
                    if detector_model is not None else None)
        estimator = cls(LandmarkModel.from_file(landmark_model, threads_for(landmark_model)),
                        detector)
        estimator.thread_choices = choices
        return estimator

    def estimate(self, rgb: np.ndarray | Image.Image) -> PoseResult | None:
        """The most confident person in an HxWx3 RGB image, or None when there is nobody."""
        image = as_rgb_image(rgb)
        width, height = image.size
        if self.detector is not None:
            detections = self.detector.detect(image)
            if not detections:
                return None
            best = detections[0]
            roi = Roi.from_detection(best, width, height)
        else:
            best, roi = None, Roi.centred_square(width, height)
        out = self.landmarks.run(image, roi)
        if out.presence < PRESENCE_THRESHOLD:
            return None
        keypoints = out.landmarks[:, :4].copy()
        if best is not None:
            score, box = best.score, best.box
        else:
            lo, hi = keypoints[:, :2].min(0), keypoints[:, :2].max(0)
            score, box = out.presence, (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
        return PoseResult(keypoints, float(score), tuple(float(v) for v in box),
                          presence=out.presence, roi=roi)
