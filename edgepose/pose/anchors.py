"""SSD anchors for the BlazePose person detector.

The detector emits one row per anchor in a fixed order, so the anchors must be
generated exactly as MediaPipe's ``SsdAnchorsCalculator`` does with the
options of its ``pose_detection_cpu`` graph (:data:`POSE_DETECTION_ANCHORS`).
With ``fixed_anchor_size`` every anchor is 1 x 1 and only the centres vary;
layers that share a stride are merged into one grid, each contributing two
anchors per cell (its own aspect ratio and the interpolated scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SsdAnchorOptions:
    """The subset of MediaPipe's ``SsdAnchorsCalculatorOptions`` BlazePose uses."""

    input_height: int
    input_width: int
    strides: tuple[int, ...]
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = True


POSE_DETECTION_ANCHORS = SsdAnchorOptions(input_height=224, input_width=224,
                                          strides=(8, 16, 32, 32, 32))


def _scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) * 0.5
    return min_scale + (max_scale - min_scale) * index / (count - 1.0)


def generate_anchors(options: SsdAnchorOptions = POSE_DETECTION_ANCHORS) -> np.ndarray:
    """Anchors as a float32 ``N x 4`` array of ``(x_center, y_center, w, h)``, 0..1."""
    anchors: list[tuple[float, float, float, float]] = []
    num_layers = len(options.strides)
    layer = 0
    while layer < num_layers:
        sizes: list[tuple[float, float]] = []  # (w, h) per anchor of a grid cell
        last = layer
        while last < num_layers and options.strides[last] == options.strides[layer]:
            scale = _scale(options.min_scale, options.max_scale, last, num_layers)
            for ratio in options.aspect_ratios:
                sizes.append((scale * math.sqrt(ratio), scale / math.sqrt(ratio)))
            if options.interpolated_scale_aspect_ratio > 0:
                scale_next = (1.0 if last == num_layers - 1 else
                              _scale(options.min_scale, options.max_scale, last + 1, num_layers))
                interpolated = math.sqrt(scale * scale_next)
                ratio = options.interpolated_scale_aspect_ratio
                sizes.append((interpolated * math.sqrt(ratio), interpolated / math.sqrt(ratio)))
            last += 1
        stride = options.strides[layer]
        rows = math.ceil(options.input_height / stride)
        cols = math.ceil(options.input_width / stride)
        for y in range(rows):
            for x in range(cols):
                for w, h in sizes:
                    if options.fixed_anchor_size:
                        w, h = 1.0, 1.0
                    anchors.append(((x + options.anchor_offset_x) / cols,
                                    (y + options.anchor_offset_y) / rows, w, h))
        layer = last
    return np.asarray(anchors, dtype=np.float32)
