"""BlazePose landmark model (``pose_landmark_full.tflite``) on one region of interest.

Mirrors MediaPipe's ``pose_landmark_by_roi`` graph: the ROI is sampled to
256 x 256 with values in 0..1; the first output holds 39 landmarks x 5 values
(x, y, z in input pixels, visibility and presence logits) of which the first 33
are the body; a second 1 x 1 output is the pose-presence score (already 0..1).
Landmarks are projected back through the ROI to the original image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edgepose.errors import ModelError
from edgepose.pose.detector import Roi, crop_roi, image_input
from edgepose.runtime.interpreter import load_interpreter

NUM_BODY_LANDMARKS = 33


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class LandmarkOutput:
    """Landmarks (33 x 5: x, y normalised to the image, z, visibility, presence), pose flag."""

    landmarks: np.ndarray
    presence: float


class LandmarkModel:
    """Run ``pose_landmark_*.tflite`` on a region of an RGB image."""

    def __init__(self, interpreter, model_path: Path):
        self.interpreter = interpreter
        self.model_path = model_path
        self._input, self.height, self.width = image_input(interpreter)
        outputs = interpreter.get_output_details()
        landmark_outputs = [d for d in outputs if len(d["shape"]) == 2 and d["shape"][1] == 195]
        flag_outputs = [d for d in outputs if tuple(d["shape"]) == (1, 1)]
        if not landmark_outputs or not flag_outputs:
            raise ModelError("not a BlazePose landmark model (expected a 1x195 landmark output "
                             "and a 1x1 pose flag)", model_path)
        self._landmarks = landmark_outputs[0]["index"]
        self._flag = flag_outputs[0]["index"]

    @classmethod
    def from_file(cls, path: str | Path, num_threads: int | None = None) -> LandmarkModel:
        interpreter, _ = load_interpreter(path, num_threads)
        return cls(interpreter, Path(path))

    def run(self, image: Image.Image, roi: Roi) -> LandmarkOutput:
        """Landmarks of the person inside ``roi``, in coordinates of the whole image."""
        crop = crop_roi(image, roi, self.width).astype(np.float32) / 255.0
        self.interpreter.set_tensor(self._input["index"], crop[None])
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._landmarks).reshape(-1, 5)[:NUM_BODY_LANDMARKS]
        presence = float(self.interpreter.get_tensor(self._flag).reshape(-1)[0])
        w, h = image.size
        xy = roi.to_image(raw[:, :2] / (self.width, self.height)) / (w, h)
        z = raw[:, 2] / self.width * roi.size / w
        out = np.column_stack([xy, z, _sigmoid(raw[:, 3]), _sigmoid(raw[:, 4])])
        return LandmarkOutput(out.astype(np.float32), presence)
