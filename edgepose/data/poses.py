"""`edgepose data poses OUT/`: a real, labelled keypoint dataset built offline.

No labelled pose dataset ships in any package, so this one is derived
honestly (see docs/poses.md):

1. Real photos of people that ship inside installed packages:
   scikit-image's ``astronaut`` and ``camera`` (the cameraman) and
   matplotlib's ``grace_hopper.jpg``.
2. Variants of each photo: a random rotation (-40..40 degrees, or -6..6 for two
   in five variants), mirror, scale
   (0.75..1.25), shift, and brightness/contrast/colour jitter, each applied
   to the pixels and every variant run through the real BlazePose extractor.
3. A label computed from the extracted landmarks by a fixed rule: the tilt of
   the shoulder line from horizontal (in image pixels). Under
   ``LEVEL_MAX_DEG`` it is ``level shoulders`` (0), over ``TILTED_MIN_DEG``
   ``tilted shoulders`` (1); variants in between are left out so no label
   sits on the boundary. Rotating the photo is what produces both classes.

Output: ``OUT/posture/<class>/<photo>_<nnn>.json`` in the dataset format of
:mod:`edgepose.data.keypoints`, plus ``OUT/poses_report.json``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from edgepose.errors import ConfigError, DataError
from edgepose.fileio import write_json
from edgepose.runtime.layouts import DEFAULT_LAYOUT, get_layout
from edgepose.runtime.presence import no_person_reason

CATEGORY = "posture"
CLASSES = ("level shoulders", "tilted shoulders")
LEVEL_MAX_DEG = 8.0
TILTED_MIN_DEG = 16.0
RULE = (f"shoulder-line tilt from horizontal (image pixels) < {LEVEL_MAX_DEG} deg -> "
        f"'{CLASSES[0]}' (0); > {TILTED_MIN_DEG} deg -> '{CLASSES[1]}' (1); in between: "
        "left out")


def source_photos() -> dict[str, Image.Image]:
    """The package-shipped photos of people, as RGB images.

    Raises:
        ConfigError: scikit-image is not installed.
    """
    try:
        import skimage.data
    except ImportError:
        raise ConfigError("`edgepose data poses` needs scikit-image: "
                          "pip install scikit-image") from None
    photos = {
        "astronaut": Image.fromarray(skimage.data.astronaut()).convert("RGB"),
        "cameraman": Image.fromarray(skimage.data.camera()).convert("RGB"),
    }
    try:
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as fh:
            photos["grace_hopper"] = Image.open(fh).convert("RGB")
    except (ImportError, OSError, ValueError):
        pass  # matplotlib's sample data is optional; two photos still give a dataset
    return photos


@dataclass(frozen=True)
class Variant:
    """One pixel-level transformation of a photo."""

    angle: float  # degrees, counter-clockwise
    mirror: bool
    scale: float
    shift: tuple[float, float]  # fraction of width/height
    brightness: float
    contrast: float
    color: float

    def apply(self, image: Image.Image) -> Image.Image:
        if self.mirror:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        w, h = image.size
        cx, cy = w / 2 + self.shift[0] * w, h / 2 + self.shift[1] * h
        a = math.radians(self.angle)
        cos, sin = math.cos(a) / self.scale, math.sin(a) / self.scale
        # Output pixel -> input pixel: rotate and scale about the (shifted) centre.
        data = (cos, sin, cx - cos * w / 2 - sin * h / 2,
                -sin, cos, cy + sin * w / 2 - cos * h / 2)
        image = image.transform((w, h), Image.Transform.AFFINE, data,
                                resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
        image = ImageEnhance.Brightness(image).enhance(self.brightness)
        image = ImageEnhance.Contrast(image).enhance(self.contrast)
        return ImageEnhance.Color(image).enhance(self.color)


def random_variant(rng: np.random.Generator) -> Variant:
    # Two in five variants stay near upright so both classes are well represented.
    angle = rng.uniform(-6, 6) if rng.random() < 0.4 else rng.uniform(-40, 40)
    return Variant(angle=round(float(angle), 2), mirror=bool(rng.random() < 0.5),
                   scale=round(float(rng.uniform(0.75, 1.25)), 3),
                   shift=(round(float(rng.uniform(-0.08, 0.08)), 3),
                          round(float(rng.uniform(-0.08, 0.08)), 3)),
                   brightness=round(float(rng.uniform(0.7, 1.3)), 3),
                   contrast=round(float(rng.uniform(0.7, 1.3)), 3),
                   color=round(float(rng.uniform(0.5, 1.5)), 3))


def shoulder_tilt_degrees(keypoints: np.ndarray, size: tuple[int, int]) -> float:
    """Angle of the shoulder line from horizontal, 0..90 degrees, in image pixels."""
    w, h = size
    left, right = keypoints[11, :2] * (w, h), keypoints[12, :2] * (w, h)
    angle = abs(math.degrees(math.atan2(left[1] - right[1], left[0] - right[0])))
    return min(angle, 180.0 - angle)


def label_for(tilt: float) -> int | None:
    """The documented rule: 0 level, 1 tilted, None in the gap between."""
    if tilt < LEVEL_MAX_DEG:
        return 0
    if tilt > TILTED_MIN_DEG:
        return 1
    return None


@dataclass
class PosesResult:
    """What `edgepose data poses` wrote."""

    out_dir: str
    category: str
    counts: dict[str, int]
    photos: list[str]
    variants: int
    no_person: int
    in_gap: int
    layout: str
    rule: str
    seconds: float
    files: list[str] = field(default_factory=list)


def build_poses(out_dir: str | Path, *, per_photo: int = 110, seed: int = 0,
                layout: str = DEFAULT_LAYOUT, landmark_model: str | Path | None = None,
                detector_model: str | Path | None = None) -> PosesResult:
    """Write the derived-label pose dataset to ``out_dir`` (a few hundred samples, < 1 min).

    Raises:
        DataError: a class got no samples (too few variants: ``per_photo``); the files
            written and ``poses_report.json`` stay for inspection.
        ModelError: the pose models cannot be found or loaded.
    """
    from edgepose.pose.estimator import PoseEstimator
    from edgepose.pose.extract import COORDINATES
    from edgepose.pose.models import resolve_pose_models

    get_layout(layout)
    out_dir = Path(out_dir)
    models = resolve_pose_models(landmark_model, detector_model)
    estimator = PoseEstimator.from_files(models.landmark, models.detector)
    photos = source_photos()
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    counts = {c: 0 for c in CLASSES}
    files: list[str] = []
    no_person = in_gap = variants = 0
    for name, photo in photos.items():
        for index in range(per_photo):
            # The first variant of every photo is the photo itself.
            variant = (Variant(0.0, False, 1.0, (0.0, 0.0), 1.0, 1.0, 1.0) if index == 0
                       else random_variant(rng))
            variants += 1
            image = variant.apply(photo)
            pose = estimator.estimate(image)
            # too few joints seen is no person either (edgepose.runtime.presence)
            if pose is None or no_person_reason(pose.vector(layout), get_layout(layout)):
                no_person += 1
                continue
            tilt = shoulder_tilt_degrees(pose.keypoints, image.size)
            label = label_for(tilt)
            if label is None:
                in_gap += 1
                continue
            rel = Path(CATEGORY) / CLASSES[label] / f"{name}_{index:03d}.json"
            write_json(out_dir / rel, {
                "keypoints": [round(float(v), 6) for v in pose.vector(layout)],
                "label": label, "category": CATEGORY, "timestamp": index,
                "score": round(pose.score, 4), "layout": layout, "coordinates": COORDINATES,
                "source": name, "variant": variant, "shoulder_tilt_deg": round(tilt, 2),
            })
            counts[CLASSES[label]] += 1
            files.append(str(rel))
    result = PosesResult(out_dir=str(out_dir), category=CATEGORY, counts=counts,
                         photos=sorted(photos), variants=variants, no_person=no_person,
                         in_gap=in_gap, layout=layout, rule=RULE,
                         seconds=round(time.perf_counter() - start, 2), files=files)
    write_json(out_dir / "poses_report.json", result)
    empty = [name for name, count in counts.items() if not count]
    if empty:  # a dataset `train keypoints` would refuse: say so now, not at training
        raise DataError(f"no samples for {', '.join(repr(n) for n in empty)} from {variants} "
                        f"variants ({no_person} without a person, {in_gap} between the "
                        "classes): raise --per-photo", out_dir / CATEGORY)
    return result
