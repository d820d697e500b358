"""Is there a person in a keypoint vector? "Nobody there" is not a pose.

A pose model that finds nobody, a tracker that lost the person, or a file
written for an empty frame gives a keypoint vector that must never be
classified: an all-zero vector (the OpenPose / seed-project convention for
"no person found"), one with too few visible joints to say anything about a
body, or one with NaN / null numbers. Training reports such files and leaves
them out; inference answers "no person" instead of a class.

A joint is visible when it is not exactly ``(0, 0)`` (2-channel layouts, the
missing-joint convention of :mod:`edgepose.runtime.layouts`) and, in layouts with
a visibility channel, when its visibility is at least :data:`VISIBLE` (0.5,
the threshold MediaPipe's own pose solutions draw landmarks at). A person
needs at least :func:`min_visible_joints` of them: a quarter of the layout's
joints, at least 3 (3 of body14's 14 joints cannot hold hips and shoulders,
the joints the body normalisation measures with; 4 can). Device-safe: numpy only.
"""

from __future__ import annotations

import math

import numpy as np

from edgepose.runtime.layouts import VISIBLE, KeypointLayout

MIN_VISIBLE_FRACTION = 0.25


def min_visible_joints(layout: KeypointLayout) -> int:
    """Fewest visible joints that make a person: 4 of body14, 5 of coco17, 9 of mediapipe33."""
    return max(3, math.ceil(layout.num_joints * MIN_VISIBLE_FRACTION))


def visible_joints(vector: np.ndarray, layout: KeypointLayout) -> int:
    """How many joints of one finite flat keypoint vector are visible (see module docstring)."""
    points = layout.reshape(np.asarray(vector, dtype=np.float32))
    found = (points[:, 0] != 0) | (points[:, 1] != 0)
    if layout.has_visibility:
        found &= points[:, layout.channels.index("visibility")] >= VISIBLE
    return int(found.sum())


def no_person_reason(vector: np.ndarray, layout: KeypointLayout | None) -> str | None:
    """Why the flat ``vector`` (``layout.size`` numbers) holds no person, or None if it does.

    ``layout`` None (a model whose layout nothing says): only NaN / null and
    all-zero are checked, since visible joints cannot be counted.

    One line, e.g. ``"no person: all 28 keypoint numbers are 0"``,
    ``"no person: 3 of 28 keypoint numbers are NaN or null"``,
    ``"no person: 2 of 14 joints visible, need 4"``.
    """
    values = np.asarray(vector, dtype=np.float32).reshape(-1)
    missing = int(np.count_nonzero(np.isnan(values)))
    if missing:
        return f"no person: {missing} of {values.size} keypoint numbers are NaN or null"
    if not np.any(values):
        return f"no person: all {values.size} keypoint numbers are 0"
    if layout is None:
        return None
    seen, need = visible_joints(values, layout), min_visible_joints(layout)
    if seen < need:
        return f"no person: {seen} of {layout.num_joints} joints visible, need {need}"
    return None
