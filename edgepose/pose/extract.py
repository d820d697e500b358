"""`edgepose keypoints extract IMAGES/ OUT/`: one keypoint JSON per image.

``IMAGES/<category>/<class>/photo.jpg`` becomes
``OUT/<category>/<class>/photo.json`` in the dataset format of
:mod:`edgepose.data.keypoints`::

    {"keypoints": [...], "category": "stance", "timestamp": "...", "score": 0.93,
     "layout": "mediapipe33", "coordinates": "normalised 0..1 by image width/height",
     "image": "stance/correct stance/photo.jpg", "image_size": [640, 480]}

No ``label``: the class folder is the label. Images where nobody is found
and images that cannot be decoded are listed in the result (and in
``OUT/extract_report.json``), never dropped silently.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgepose.errors import DataError
from edgepose.fileio import write_json
from edgepose.pose.estimator import PoseEstimator, PoseResult
from edgepose.pose.models import resolve_pose_models
from edgepose.runtime.layouts import DEFAULT_LAYOUT, get_layout
from edgepose.runtime.preprocess import IMAGE_SUFFIXES, load_rgb
from edgepose.runtime.presence import no_person_reason

COORDINATES = "normalised 0..1 by image width (x) and height (y), origin top-left"


@dataclass
class ExtractResult:
    """What an extraction run wrote and what it could not use."""

    images: int
    written: list[str] = field(default_factory=list)
    no_person: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    layout: str = DEFAULT_LAYOUT
    landmark_model: str = ""
    detector_model: str | None = None
    crop: str = "detector"
    seconds: float = 0.0
    mean_ms_per_image: float = 0.0
    report_path: str = ""
    threads_auto: dict[str, str] = field(default_factory=dict)  # model file -> what auto chose


def list_images(root: Path) -> list[Path]:
    """Image files under ``root``, recursively, in a stable order."""
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def sample_record(result: PoseResult, layout: str, image_rel: str, size: tuple[int, int],
                  category: str | None, timestamp: str) -> dict:
    """The JSON object written for one image."""
    record = {"keypoints": [round(float(v), 6) for v in result.vector(layout)]}
    if category is not None:
        record["category"] = category
    record.update({"timestamp": timestamp, "score": round(result.score, 4),
                   "layout": layout, "coordinates": COORDINATES, "image": image_rel,
                   "image_size": list(size)})
    return record


def extract_keypoints(images_dir: str | Path, out_dir: str | Path, *, layout: str = DEFAULT_LAYOUT,
                      landmark_model: str | Path | None = None,
                      detector_model: str | Path | None = None, no_detector: bool = False,
                      num_threads: int | str | None = None,
                      estimator: PoseEstimator | None = None) -> ExtractResult:
    """Estimate the pose in every image under ``images_dir``; mirror its folders in ``out_dir``.

    Raises:
        DataError: ``images_dir`` is missing or holds no image.
    """
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    layout_obj = get_layout(layout)
    if not images_dir.is_dir():
        raise DataError("image folder not found", images_dir)
    images = list_images(images_dir)
    if not images:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found", images_dir)
    if estimator is None:
        models = resolve_pose_models(landmark_model, detector_model, no_detector)
        estimator = PoseEstimator.from_files(models.landmark, models.detector, num_threads)
    result = ExtractResult(images=len(images), layout=layout,
                           landmark_model=str(estimator.landmarks.model_path),
                           detector_model=(str(estimator.detector.model_path)
                                           if estimator.detector else None),
                           crop="detector" if estimator.detector else "centred-square",
                           threads_auto=dict(getattr(estimator, "thread_choices", {})))
    start = time.perf_counter()
    for path in images:
        rel = path.relative_to(images_dir)
        try:
            image = load_rgb(path)
        except DataError:
            result.unreadable.append(str(rel))
            continue
        pose = estimator.estimate(image)
        # a "person" with too few joints seen is no sample: training would leave it out
        if pose is None or no_person_reason(pose.vector(layout), layout_obj) is not None:
            result.no_person.append(str(rel))
            continue
        category = rel.parts[0] if len(rel.parts) >= 3 else None
        stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).isoformat()
        target = out_dir / rel.with_suffix(".json")
        write_json(target, sample_record(pose, layout, str(rel), image.size, category, stamp))
        result.written.append(str(target.relative_to(out_dir)))
    result.seconds = round(time.perf_counter() - start, 3)
    result.mean_ms_per_image = round(1000 * result.seconds / len(images), 2)
    result.report_path = str(out_dir / "extract_report.json")
    write_json(result.report_path, result)
    return result
