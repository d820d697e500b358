"""The same synthetic poses in every keypoint unit the trainer accepts (built at test time).

One seeded set of MediaPipe-style bodies (33 landmarks: x, y normalised 0..1,
z, visibility), two classes: arms lowered (``down``) and raised (``up``), each
pose moved, scaled and jittered at random, one joint in seven not found. From
the same bodies :func:`write_pose_dataset` writes

- ``unit="normalized"``: body14 x, y in 0..1 (28 numbers, missing joint = 0, 0);
- ``unit="pixels"``: the same body14 x, y times the image size (640 x 480 px);
- ``unit="mediapipe"``: the 33 x (x, y, z, visibility) vector (132 numbers,
  missing joint = visibility 0.05).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgepose.runtime.layouts import MEDIAPIPE33_JOINTS, get_layout

CLASSES = ("down", "up")
IMAGE_SIZE = (640, 480)  # width, height in pixels
UNITS = ("normalized", "pixels", "mediapipe")
LAYOUT_OF_UNIT = {"normalized": "body14", "pixels": "body14", "mediapipe": "mediapipe33"}

_J = {name: i for i, name in enumerate(MEDIAPIPE33_JOINTS)}


def _base() -> np.ndarray:
    """A standing body, hips at the origin, about 1.2 units tall (33 x 2)."""
    p = np.zeros((33, 2))
    for name in MEDIAPIPE33_JOINTS[:11]:  # face
        side = -0.03 if "left" in name else (0.03 if "right" in name else 0.0)
        p[_J[name]] = (side, -0.62)
    for side, sx in (("left", -1), ("right", 1)):
        p[_J[f"{side}_shoulder"]] = (0.15 * sx, -0.45)
        p[_J[f"{side}_elbow"]] = (0.2 * sx, -0.2)
        p[_J[f"{side}_hip"]] = (0.1 * sx, 0.0)
        p[_J[f"{side}_knee"]] = (0.1 * sx, 0.3)
        for name in ("ankle", "heel", "foot_index"):
            p[_J[f"{side}_{name}"]] = (0.1 * sx, 0.6)
    return p


def make_landmarks(per_class: int, seed: int = 0, task: str = "arms"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(landmarks n x 33 x 4 float32, labels n)``; classes in :data:`CLASSES` order.

    ``task="arms"``: arms lowered vs raised (easy). ``task="stance"``: feet
    0.16 vs 0.28 body units apart (hip width 0.2), each foot jittered by 0.025
    and the whole body turned by up to 8 degrees: a subtle difference like
    the seed projects' "correct / incorrect stance", where a model that
    learns nothing stays at 50%.
    """
    rng = np.random.default_rng(seed)
    base = _base()
    out, labels = [], []
    for label in range(len(CLASSES)):
        for i in range(per_class):
            pose = base + rng.normal(0, 0.02, size=base.shape)
            if task == "arms":
                wrist_y = rng.uniform(-0.05, 0.2) if label == 0 else rng.uniform(-0.8, -0.45)
            else:
                wrist_y = rng.uniform(-0.05, 0.2)
                half = 0.08 if label == 0 else 0.14
                for side, sx in (("left", -1), ("right", 1)):
                    foot = np.array([half * sx, 0.6]) + rng.normal(0, 0.025, 2)
                    for name in ("ankle", "heel", "foot_index"):
                        pose[_J[f"{side}_{name}"]] = foot
                    pose[_J[f"{side}_knee"]] = (foot + pose[_J[f"{side}_hip"]]) / 2
                angle = np.radians(rng.uniform(-8, 8))
                turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
                pose = pose @ turn.T
            for side, sx in (("left", -1), ("right", 1)):
                hand = np.array([0.22 * sx, wrist_y]) + rng.normal(0, 0.03, 2)
                for name in ("wrist", "pinky", "index", "thumb"):
                    pose[_J[f"{side}_{name}"]] = hand
            pose = pose * rng.uniform(0.25, 0.6) + rng.uniform(0.35, 0.65, size=2)
            z = rng.normal(0, 0.05, size=(33, 1))
            visibility = rng.uniform(0.85, 1.0, size=(33, 1))
            if i % 7 == 0:  # a leg joint not found
                visibility[_J[("left_knee", "right_knee", "left_ankle", "right_ankle")[
                    rng.integers(4)]]] = 0.05
            out.append(np.concatenate([pose, z, visibility], axis=1))
            labels.append(label)
    return np.asarray(out, dtype=np.float32), np.asarray(labels)


def vectors(landmarks: np.ndarray, unit: str) -> np.ndarray:
    """Landmarks (n x 33 x 4) -> keypoint vectors of ``unit`` (n x 28 or n x 132)."""
    if unit == "mediapipe":
        return landmarks.reshape(len(landmarks), -1).astype(np.float32)
    layout = get_layout("body14")
    rows = []
    for marks in landmarks:
        v = layout.from_landmarks(marks).reshape(-1, 2)
        # a joint is missing when any of its source landmarks is not visible
        for j, src in enumerate(layout.from_mediapipe):
            if (marks[list(src), 3] < 0.5).any():
                v[j] = 0.0
        if unit == "pixels":
            v = v * np.asarray(IMAGE_SIZE, dtype=np.float32)
        rows.append(v.reshape(-1))
    return np.asarray(rows, dtype=np.float32)


def write_pose_dataset(root: Path, unit: str, per_class: int = 60, seed: int = 0,
                       category: str | None = None, task: str = "arms") -> Path:
    """Write ``root/[category/]<class>/NNN.json``; returns the folder holding the classes."""
    landmarks, labels = make_landmarks(per_class, seed, task)
    data = vectors(landmarks, unit)
    folder = root / category if category else root
    for i, (vector, label) in enumerate(zip(data, labels, strict=True)):
        target = folder / CLASSES[label]
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{i:04d}.json").write_text(json.dumps(
            {"keypoints": [round(float(v), 5) for v in vector]}))
    return folder


def train_unit_run(root: Path, unit: str, modes: tuple[str, ...] = ("int8",)) -> Path:
    """Train the real keypoint classifier on the seeded poses of ``unit`` and convert it.

    Writes the dataset to ``root/data`` and the run to ``root/run`` (hidden 32, 16;
    25 epochs), converted in ``modes``; returns the run directory.
    """
    from edgepose.converters import convert_run
    from edgepose.train.hyperparameters import TrainingParams
    from edgepose.train.keypoint_classifier import (
        KeypointModelParams,
        KeypointTrainOptions,
        train_keypoint_classifier,
    )

    write_pose_dataset(root / "data", unit)
    options = KeypointTrainOptions(
        model=KeypointModelParams(layout=LAYOUT_OF_UNIT[unit], hidden=[32, 16]),
        training=TrainingParams(epochs=25, batch_size=32, lr=3e-3, patience=0, verbose=0),
        output=str(root / "run"))
    run = Path(train_keypoint_classifier(root / "data", options).run_dir)
    convert_run(run, list(modes))
    return run


NO_KEYPOINT_LAYOUTS = ("images", "empty", "flat json")


def write_folder_without_keypoints(root: Path, layout: str) -> Path:
    """A dataset folder that holds no keypoint data: class folders of images, an empty class
    folder, or JSON files with no class folder above them. Returns ``root``."""
    (root / "a").mkdir(parents=True)
    if layout == "images":
        (root / "a" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    elif layout == "flat json":
        (root / "x.json").write_text(json.dumps({"keypoints": [0.5] * 28}))
        (root / "a").rmdir()
    return root
