"""Where the BlazePose models come from, and finding them on disk.

Both models ship inside the ``mediapipe==0.10.18`` wheel (Apache-2.0). edgepose
does not need the mediapipe runtime: :func:`fetch_pose_models` downloads the
wheel through pip (the registry users already reach, with their pip settings,
proxy and cache), takes the two ``.tflite`` files out of it, checks each
against its sha256 and caches them in one folder, :func:`models_dir`
(``$EDGEPOSE_MODELS_DIR``, else ``~/.cache/edgepose/models``): the folder the search
reads is the folder ``keypoints fetch`` fills. Never a path relative to the current
directory: a service or a shell started elsewhere would find other models, or none.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from edgepose.errors import ConfigError, DataError, ModelError
from edgepose.fileio import write_bytes

MEDIAPIPE_REQUIREMENT = "mediapipe==0.10.18"
LANDMARK_MODEL = "pose_landmark_full.tflite"
DETECTOR_MODEL = "pose_detection.tflite"
WHEEL_MEMBERS = {
    LANDMARK_MODEL: "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
    DETECTOR_MODEL: "mediapipe/modules/pose_detection/pose_detection.tflite",
}
# sha256 of the two members of the mediapipe 0.10.18 wheels (the same in every platform's
# wheel; measured on the manylinux x86_64 cp311 one).
SHA256 = {
    LANDMARK_MODEL: "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    DETECTOR_MODEL: "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
}
# One fixed wheel whatever the host: mediapipe 0.10.18 has no wheel for every Python and
# CPU a Pi or a workstation runs, and only the .tflite files inside are used.
WHEEL_PLATFORM = ("--platform", "manylinux_2_17_x86_64", "--python-version", "3.11",
                  "--implementation", "cp", "--abi", "cp311")
DOWNLOAD_COMMAND = (f"pip download --no-deps --only-binary=:all: {' '.join(WHEEL_PLATFORM)} "
                    f"{MEDIAPIPE_REQUIREMENT} -d wheels/")
DEFAULT_MODELS_DIR = Path("~/.cache/edgepose/models")
MODELS_DIR_ENV = "EDGEPOSE_MODELS_DIR"
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


def models_dir() -> Path:
    """The one models cache, absolute: ``$EDGEPOSE_MODELS_DIR`` (``~`` expanded) when set,
    else ``~/.cache/edgepose/models``. ``keypoints fetch`` fills it; the search reads it.

    Raises:
        ConfigError: ``EDGEPOSE_MODELS_DIR`` is a relative path (it would name another
            folder from every working directory, e.g. a systemd service's).
    """
    value = os.environ.get(MODELS_DIR_ENV)
    if not value:
        return DEFAULT_MODELS_DIR.expanduser().absolute()
    folder = Path(value).expanduser()
    if not folder.is_absolute():
        raise ConfigError(f"{MODELS_DIR_ENV}={value} is a relative path; give an absolute one "
                          "(it must name the same folder from every working directory)")
    return folder


def _given_dir(directory: str | Path) -> Path:
    """A folder the user named (``--out``), absolute: it is printed and searched as such."""
    return Path(directory).expanduser().absolute()


def search_path(directory: str | Path | None = None) -> list[Path]:
    """Folders searched for the models, in order: ``directory`` when given, then
    :func:`models_dir`; all absolute (ConfigError: see :func:`models_dir`)."""
    out = [_given_dir(directory)] if directory is not None else []
    cache = models_dir()
    return out + ([cache] if cache not in out else [])


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
    """Explicit paths win; otherwise search :func:`search_path`. Raises ModelError saying
    how to get them (ConfigError for a relative ``EDGEPOSE_MODELS_DIR`` when searched)."""
    searched = not (landmark_model and (no_detector or detector_model))
    found = find_pose_models() if searched else None
    landmark = Path(landmark_model) if landmark_model else (found.landmark if found else None)
    if landmark is None:
        raise ModelError(f"{LANDMARK_MODEL} not found in {', '.join(map(str, search_path()))}; "
                         "run `edgepose keypoints fetch` to download it, or pass "
                         "--landmark-model PATH")
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


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_model(name: str, data: bytes, where: str | Path) -> None:
    """Raise :class:`ModelError` unless ``data`` is the known ``name`` model (:data:`SHA256`).

    Raises:
        ModelError: ``data`` has another sha256 than the known model.
    """
    actual = sha256_of(data)
    if actual != SHA256[name]:
        raise ModelError(f"{name} has sha256 {actual[:16]}..., not the {MEDIAPIPE_REQUIREMENT} "
                         f"model's {SHA256[name][:16]}...", where)


def extract_from_wheel(wheel: str | Path, out_dir: str | Path) -> list[Path]:
    """Copy the two BlazePose models out of a downloaded mediapipe wheel into ``out_dir``.

    Each is checked against :data:`SHA256` before anything is written
    (:class:`ModelError` naming the wheel otherwise).

    Raises:
        DataError: the wheel is missing, not a zip file, or lacks a model.
        ModelError: a model in it is not the known one (its sha256).
    """
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
        contents = {}
        for target, member in WHEEL_MEMBERS.items():
            if member not in names:
                raise DataError(f"{member} is not in this wheel; use {MEDIAPIPE_REQUIREMENT}",
                                wheel)
            contents[target] = archive.read(member)
            verify_model(target, contents[target], wheel)
    for target, data in contents.items():
        written.append(write_bytes(out_dir / target, data))
    return written


@dataclass
class FetchResult:
    """What :func:`fetch_pose_models` did: where the verified models are, and how."""

    directory: str
    files: list[str]
    sha256: dict[str, str]
    source: str  # "cache" (already there, verified), "pip" or the wheel given
    commands: list[str] = field(default_factory=list)  # what ran, for the log


def offline_help(target: Path) -> str:
    """Exactly what to copy where when pip cannot reach the registry (one line)."""
    files = " and ".join(f"{name} (sha256 {SHA256[name]})" for name in SHA256)
    return (f"on a machine with network run `{DOWNLOAD_COMMAND}`, copy the wheel here and run "
            f"`edgepose keypoints fetch --from-wheel WHEEL`, or copy {files} into {target}/")


def _cached(target: Path) -> bool:
    for name in SHA256:
        path = target / name
        if not path.is_file() or sha256_of(path.read_bytes()) != SHA256[name]:
            return False
    return True


def fetch_pose_models(out_dir: str | Path | None = None, wheel: str | Path | None = None
                      ) -> FetchResult:
    """The two BlazePose models in ``out_dir`` (default :func:`models_dir`), verified.

    Already there with the right sha256: nothing is downloaded. Else the
    mediapipe wheel (``wheel``, or ``pip download`` of :data:`MEDIAPIPE_REQUIREMENT`
    for one fixed platform, :data:`WHEEL_PLATFORM`) is opened and the two files
    are checked and written atomically. pip runs as ``python -m pip`` of this
    interpreter, so the user's index, proxy and cache settings apply. Raises
    :class:`ModelError` when pip fails, with :func:`offline_help` in the message;
    :class:`ConfigError` for a relative ``EDGEPOSE_MODELS_DIR`` (:func:`models_dir`).
    """
    target = _given_dir(out_dir) if out_dir else models_dir()
    hashes = dict(SHA256)
    if wheel is None and _cached(target):
        return FetchResult(str(target), [str(target / n) for n in SHA256], hashes, "cache")
    if wheel is not None:
        files = extract_from_wheel(wheel, target)
        return FetchResult(str(target), [str(p) for p in files], hashes, str(wheel))
    with tempfile.TemporaryDirectory(prefix="edgepose-wheel-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                   "--only-binary=:all:", *WHEEL_PLATFORM, MEDIAPIPE_REQUIREMENT, "-d", tmp]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelError(f"could not run pip ({exc}); {offline_help(target)}") from None
        wheels = sorted(Path(tmp).glob("mediapipe-*.whl"))
        if done.returncode != 0 or not wheels:
            lines = [line.strip() for line in (done.stderr or done.stdout).splitlines()
                     if line.strip()]
            reason = lines[-1] if lines else f"pip exited with {done.returncode}"
            raise ModelError(f"could not download {MEDIAPIPE_REQUIREMENT} through pip "
                             f"({reason}); {offline_help(target)}")
        files = extract_from_wheel(wheels[0], target)
    return FetchResult(str(target), [str(p) for p in files], hashes, "pip",
                       [" ".join(command[1:-2] + ["-d", "<temporary folder>"])])


def models_info(wheel: str | Path | None = None, out_dir: str | Path | None = None
                ) -> ModelsInfo:
    """Describe where the models come from; extract them from ``wheel`` when given (into
    ``out_dir``, default :func:`models_dir`)."""
    target = _given_dir(out_dir) if out_dir else models_dir()
    extracted = [str(p) for p in extract_from_wheel(wheel, target)] if wheel else []
    return ModelsInfo(
        requirement=MEDIAPIPE_REQUIREMENT, download_command=DOWNLOAD_COMMAND,
        extract_command=(f"edgepose keypoints fetch --from-wheel "
                         f"wheels/mediapipe-0.10.18-*.whl --out {target}"),
        members=dict(WHEEL_MEMBERS), license=LICENSE,
        search_path=[str(p) for p in search_path(target)],
        found=find_pose_models(target), extracted=extracted)
