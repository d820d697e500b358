"""Keypoint layouts: which joints a keypoint vector holds, in which order.

A keypoint vector is flat: ``[x0, y0, x1, y1, ...]`` for 2-channel layouts,
``[x0, y0, z0, v0, x1, ...]`` for MediaPipe's 4-channel one. ``x``/``y`` are
normalised to the image (0..1 by width/height). A joint that was not found is
written as ``x = y = 0`` in 2-channel layouts (the OpenPose convention) and
has a low ``visibility`` in ``mediapipe33``.

Every layout also says how to build it from MediaPipe BlazePose's 33
landmarks (``from_mediapipe``: each joint is the mean of those landmark
indices), so the pose extractor can write any of them. Device-safe: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgepose.errors import ConfigError

MEDIAPIPE33_JOINTS = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)

COCO17_JOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

# OpenPose's COCO-18 body without eyes and ears: nose, neck (mid-shoulder) and 12 limb joints.
BODY14_JOINTS = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
    "left_knee", "left_ankle",
)


@dataclass(frozen=True)
class KeypointLayout:
    """Joint names, channels per joint, and the left/right joint pairs of one layout."""

    name: str
    joints: tuple[str, ...]
    channels: tuple[str, ...]
    from_mediapipe: tuple[tuple[int, ...], ...]

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def num_channels(self) -> int:
        return len(self.channels)

    @property
    def size(self) -> int:
        """Length of the flat keypoint vector."""
        return self.num_joints * self.num_channels

    @property
    def has_visibility(self) -> bool:
        return "visibility" in self.channels

    def index(self, joint: str) -> int:
        return self.joints.index(joint)

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """``(left, right)`` joint index pairs, for mirroring."""
        out = []
        for i, name in enumerate(self.joints):
            if name.startswith("left_"):
                out.append((i, self.index("right_" + name[len("left_"):])))
        return tuple(out)

    @property
    def mirror_permutation(self) -> tuple[int, ...]:
        """Joint order of the mirrored pose: left and right swapped."""
        perm = list(range(self.num_joints))
        for left, right in self.pairs:
            perm[left], perm[right] = right, left
        return tuple(perm)

    @property
    def hips(self) -> tuple[int, int]:
        return self.index("left_hip"), self.index("right_hip")

    @property
    def shoulders(self) -> tuple[int, int]:
        return self.index("left_shoulder"), self.index("right_shoulder")

    def reshape(self, vector: np.ndarray) -> np.ndarray:
        """Flat vector(s) ``(..., size)`` -> ``(..., joints, channels)``."""
        vector = np.asarray(vector)
        return vector.reshape(*vector.shape[:-1], self.num_joints, self.num_channels)

    def from_landmarks(self, landmarks: np.ndarray, visible: float | None = None) -> np.ndarray:
        """MediaPipe ``33 x 4`` landmarks (x, y, z, visibility) -> this layout's float32 vector.

        Each joint is the mean of its source landmarks; 2-channel layouts keep x, y.
        ``visible``: in 2-channel layouts (no visibility channel to say it), a joint
        any of whose source landmarks has a visibility under this is written as
        missing, ``(0, 0)``; None keeps every joint's coordinates.

        Raises:
            ValueError: ``landmarks`` is not ``33 x 4``.
        """
        landmarks = np.asarray(landmarks, dtype=np.float32)
        if landmarks.shape != (33, 4):
            raise ValueError(f"expected 33x4 MediaPipe landmarks, got {landmarks.shape}")
        joints = np.stack([landmarks[list(src)].mean(axis=0) for src in self.from_mediapipe])
        if visible is not None and not self.has_visibility:
            hidden = [bool((landmarks[list(src), 3] < visible).any())
                      for src in self.from_mediapipe]
            joints[hidden, :2] = 0.0
        return joints[:, : self.num_channels].reshape(-1).astype(np.float32)


def _by_name(joints: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
    return tuple((MEDIAPIPE33_JOINTS.index(j),) for j in joints)


_NECK = (MEDIAPIPE33_JOINTS.index("left_shoulder"), MEDIAPIPE33_JOINTS.index("right_shoulder"))

LAYOUTS: dict[str, KeypointLayout] = {
    "coco17": KeypointLayout("coco17", COCO17_JOINTS, ("x", "y"), _by_name(COCO17_JOINTS)),
    "mediapipe33": KeypointLayout("mediapipe33", MEDIAPIPE33_JOINTS,
                                  ("x", "y", "z", "visibility"), _by_name(MEDIAPIPE33_JOINTS)),
    "body14": KeypointLayout(
        "body14", BODY14_JOINTS, ("x", "y"),
        tuple(_NECK if j == "neck" else (MEDIAPIPE33_JOINTS.index(j),) for j in BODY14_JOINTS)),
}


# A landmark is visible at MediaPipe visibility >= 0.5 (the threshold its pose solutions
# draw landmarks at); edgepose.runtime.presence counts visible joints with it.
VISIBLE = 0.5

# What the pose commands write (``keypoints extract``, ``data poses``) when no --layout is
# given: every landmark MediaPipe gives, with visibility. ``train keypoints`` reads the
# layout the files record, so producer and trainer agree without --layout.
DEFAULT_LAYOUT = "mediapipe33"


def get_layout(name: str) -> KeypointLayout:
    """Look a layout up by name; an unknown name raises :class:`ConfigError` listing them.

    Raises:
        ConfigError: an unknown ``name`` (the message lists them).
    """
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ConfigError(f"unknown keypoint layout {name!r}; expected one of "
                          f"{', '.join(sorted(LAYOUTS))}") from None


def layout_for_length(length: int) -> KeypointLayout | None:
    """The layout whose vector has ``length`` numbers, if exactly one does."""
    matches = [layout for layout in LAYOUTS.values() if layout.size == length]
    return matches[0] if len(matches) == 1 else None
