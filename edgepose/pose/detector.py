"""BlazePose person detector (``pose_detection.tflite``) and the landmark ROI it implies.

Mirrors MediaPipe's ``pose_detection_cpu`` graph: the image is letterboxed to
224 x 224 (aspect kept, black padding) with values in -1..1; each of the 2254
anchors yields a box and 4 keypoints (0 = mid-hip, 1 = a point whose distance
from the hips circumscribes the whole body, 2 = mid-shoulder, 3 = above the
head); scores are sigmoid(clip(logit, +-100)); detections over 0.5 are merged
by weighted non-maximum suppression (IoU 0.3).

The region of interest for the landmark model (``PoseDetectionToRoi``) is a
square centred on keypoint 0, of side 2 x |kp1 - kp0| x 1.25, rotated so that
the hip -> kp1 vector points straight up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edgepose.errors import ModelError
from edgepose.pose.anchors import POSE_DETECTION_ANCHORS, generate_anchors
from edgepose.runtime.interpreter import load_interpreter

MIN_SCORE = 0.5
NMS_IOU = 0.3
ROI_SCALE = 1.25


@dataclass(frozen=True)
class Detection:
    """One person: score, box ``(xmin, ymin, xmax, ymax)``, 4 x 2 keypoints; 0..1 of the image."""

    score: float
    box: tuple[float, float, float, float]
    keypoints: np.ndarray


@dataclass(frozen=True)
class Roi:
    """A rotated square in image pixels: centre, side length, rotation in radians."""

    x_center: float
    y_center: float
    size: float
    rotation: float = 0.0

    @classmethod
    def centred_square(cls, width: int, height: int) -> Roi:
        """The fallback without a detector: the whole image, padded to a centred square."""
        return cls(width / 2.0, height / 2.0, float(max(width, height)), 0.0)

    @classmethod
    def from_detection(cls, detection: Detection, width: int, height: int) -> Roi:
        x0, y0 = detection.keypoints[0] * (width, height)
        x1, y1 = detection.keypoints[1] * (width, height)
        rotation = _normalize_radians(math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0))
        size = 2.0 * math.hypot(x1 - x0, y1 - y0) * ROI_SCALE
        return cls(float(x0), float(y0), float(size), float(rotation))

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Points in ROI coordinates (0..1 across the square) -> image pixels."""
        s = points[..., 0] - 0.5
        t = points[..., 1] - 0.5
        cos, sin = math.cos(self.rotation), math.sin(self.rotation)
        x = self.x_center + self.size * (cos * s - sin * t)
        y = self.y_center + self.size * (sin * s + cos * t)
        return np.stack([x, y], axis=-1)


def _normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def crop_roi(image: Image.Image, roi: Roi, size: int) -> np.ndarray:
    """Sample the rotated square ``roi`` of ``image`` into a ``size x size x 3`` uint8 array.

    Outside the image is black. Large regions are first reduced with a box
    filter so bilinear sampling does not alias.
    """
    factor = int(roi.size // (2 * size))
    scale = 1.0
    if factor >= 2:
        image = image.reduce(factor)
        scale = 1.0 / factor
    cx, cy, side = roi.x_center * scale, roi.y_center * scale, roi.size * scale
    cos, sin = math.cos(roi.rotation), math.sin(roi.rotation)
    k = side / size
    # Output pixel (u, v) -> input pixel: centre + side * R(rotation) * ((u, v) / size - 0.5).
    data = (k * cos, -k * sin, cx - side * 0.5 * (cos - sin),
            k * sin, k * cos, cy - side * 0.5 * (sin + cos))
    out = image.transform((size, size), Image.Transform.AFFINE, data,
                          resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    return np.asarray(out, dtype=np.uint8)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix0 = np.maximum(box[0], boxes[:, 0])
    iy0 = np.maximum(box[1], boxes[:, 1])
    ix1 = np.minimum(box[2], boxes[:, 2])
    iy1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray,
                 iou_threshold: float = NMS_IOU, max_results: int = 5
                 ) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """MediaPipe's WEIGHTED suppression: each cluster becomes its score-weighted mean."""
    order = np.argsort(-scores, kind="stable")
    results = []
    while order.size and len(results) < max_results:
        top = order[0]
        overlap = _iou(boxes[top], boxes[order]) > iou_threshold
        members = order[overlap]
        weights = scores[members][:, None]
        box = (boxes[members] * weights).sum(0) / weights.sum()
        kps = (keypoints[members] * weights[:, :, None]).sum(0) / weights.sum()
        results.append((float(scores[top]), box, kps))
        order = order[~overlap]
    return results


def image_input(interpreter) -> tuple[dict, int, int]:
    """The input detail of a BlazePose model (NHWC) and its height and width in pixels."""
    detail = interpreter.get_input_details()[0]
    _, height, width, _ = (int(d) for d in detail["shape"])
    return detail, height, width


class PoseDetector:
    """Find people in an RGB image with ``pose_detection.tflite``."""

    def __init__(self, interpreter, model_path: Path):
        self.interpreter = interpreter
        self.model_path = model_path
        self._input, self.height, self.width = image_input(interpreter)
        outputs = interpreter.get_output_details()
        by_last_dim = {int(d["shape"][-1]): d["index"] for d in outputs}
        if len(outputs) != 2 or 12 not in by_last_dim or 1 not in by_last_dim:
            raise ModelError("not a BlazePose detector (expected 1xNx12 boxes and 1xNx1 "
                             "scores)", model_path)
        self._boxes, self._scores = by_last_dim[12], by_last_dim[1]
        options = POSE_DETECTION_ANCHORS
        self.anchors = generate_anchors(options)
        if self.height != options.input_height or self.width != options.input_width:
            raise ModelError(f"detector input is {self.height}x{self.width}, expected "
                             f"{options.input_height}x{options.input_width}", model_path)

    @classmethod
    def from_file(cls, path: str | Path, num_threads: int | None = None) -> PoseDetector:
        interpreter, _ = load_interpreter(path, num_threads)
        return cls(interpreter, Path(path))

    def _letterbox(self, image: Image.Image) -> tuple[np.ndarray, float, float]:
        """224x224 float input in -1..1, and the padding fractions (x, y) on each side."""
        w, h = image.size
        scale = min(self.width / w, self.height / h)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        canvas = Image.new("RGB", (self.width, self.height))
        left, top = (self.width - new_w) // 2, (self.height - new_h) // 2
        canvas.paste(image.resize((new_w, new_h), Image.Resampling.BILINEAR,
                                  reducing_gap=3.0), (left, top))
        array = np.asarray(canvas, dtype=np.float32) / 127.5 - 1.0
        return array, left / self.width, top / self.height

    def detect(self, image: Image.Image, min_score: float = MIN_SCORE) -> list[Detection]:
        """People in ``image``, best first (empty list: nobody)."""
        array, pad_x, pad_y = self._letterbox(image)
        self.interpreter.set_tensor(self._input["index"], array[None])
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._boxes)[0]
        logits = self.interpreter.get_tensor(self._scores)[0, :, 0]
        clipped = np.clip(logits.astype(np.float64), -100.0, 100.0)
        scores = 1.0 / (1.0 + np.exp(-clipped))
        keep = scores >= min_score
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        # Raw values are pixel offsets of the 224 input relative to each anchor centre.
        cx = raw[:, 0] / self.width * anchors[:, 2] + anchors[:, 0]
        cy = raw[:, 1] / self.height * anchors[:, 3] + anchors[:, 1]
        bw = raw[:, 2] / self.width * anchors[:, 2]
        bh = raw[:, 3] / self.height * anchors[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        kps = raw[:, 4:12].reshape(-1, 4, 2)
        kps = kps / (self.width, self.height) * anchors[:, None, 2:4] + anchors[:, None, 0:2]
        detections = []
        for score, box, keypoints in weighted_nms(scores, boxes, kps):
            # Undo the letterbox: coordinates relative to the original image.
            sx, sy = 1.0 - 2 * pad_x, 1.0 - 2 * pad_y
            box = (box - (pad_x, pad_y, pad_x, pad_y)) / (sx, sy, sx, sy)
            keypoints = (keypoints - (pad_x, pad_y)) / (sx, sy)
            detections.append(Detection(score, tuple(float(v) for v in box),
                                        keypoints.astype(np.float32)))
        return detections
