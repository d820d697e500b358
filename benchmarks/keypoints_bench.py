"""Keypoint pipeline timings on this machine: pose extraction per image, classifier training.

- ``extraction``: BlazePose through the TFLite interpreter (the device-side
  ``edgepose.pose.PoseEstimator``) on real photos from scikit-image and
  matplotlib, with the person detector and with the centred-square crop;
  median / p90 milliseconds per image over ``--repeats`` runs after a warm-up.
- ``training``: ``edgepose train keypoints`` on the derived-label poses dataset
  (built first, its build time recorded too): wall time, epochs, samples/s and
  test accuracy.

Writes ``benchmarks/results/<machine>/keypoints.json`` and ``.md``.
Run standalone: ``.venv/bin/python benchmarks/keypoints_bench.py [--repeats 20]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np  # noqa: E402
from benchmark_utils import results_dir, write_results  # noqa: E402  (the one path set-up)

from edgepose.bench.device import machine_slug  # noqa: E402


@dataclass
class ExtractionCase:
    crop: str  # detector | centred-square
    image: str
    size: list[int]
    found: bool
    median_ms: float
    p90_ms: float
    repeats: int


@dataclass
class TrainingCase:
    dataset_samples: int
    dataset_build_seconds: float
    layout: str
    hidden: list[int]
    epochs: int
    seconds: float
    samples_per_second: float
    test_accuracy: float


@dataclass
class KeypointsBench:
    machine: str
    cpu_count: int | None
    python: str
    threads: int | None
    extraction: list[ExtractionCase] = field(default_factory=list)
    training: TrainingCase | None = None


def photos() -> dict:
    import skimage.data
    from PIL import Image

    from edgepose.data.poses import source_photos

    out = {name: np.asarray(img) for name, img in source_photos().items()}
    out["coffee (no person)"] = skimage.data.coffee()
    big = Image.fromarray(skimage.data.astronaut()).resize((1280, 1280))
    out["astronaut 1280px"] = np.asarray(big)
    return out


def bench_extraction(repeats: int, threads: int | None) -> list[ExtractionCase]:
    from edgepose.pose import PoseEstimator
    from tests.assets import asset_path

    cases = []
    images = photos()
    for crop, detector in (("detector", asset_path("pose_detection.tflite")),
                           ("centred-square", None)):
        estimator = PoseEstimator.from_files(asset_path("pose_landmark_full.tflite"), detector,
                                             num_threads=threads)
        for name, image in images.items():
            found = estimator.estimate(image) is not None  # warm-up
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                estimator.estimate(image)
                times.append((time.perf_counter() - start) * 1000)
            cases.append(ExtractionCase(crop, name, list(image.shape[:2]), found,
                                        round(float(np.median(times)), 2),
                                        round(float(np.percentile(times, 90)), 2), repeats))
    return cases


def bench_training(epochs: int) -> TrainingCase:
    from edgepose.data.poses import build_poses
    from edgepose.train.hyperparameters import TrainingParams
    from edgepose.train.keypoint_classifier import (
        KeypointModelParams,
        KeypointTrainOptions,
        train_keypoint_classifier,
    )
    from tests.assets import asset_path

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        poses = build_poses(Path(tmp) / "poses", layout="coco17",
                            landmark_model=asset_path("pose_landmark_full.tflite"),
                            detector_model=asset_path("pose_detection.tflite"))
        build_seconds = time.perf_counter() - start
        params = KeypointModelParams(layout="coco17")
        options = KeypointTrainOptions(
            model=params, training=TrainingParams(epochs=epochs, patience=0, verbose=0),
            output=str(Path(tmp) / "run"))
        result = train_keypoint_classifier(Path(tmp) / "poses", options)
    return TrainingCase(sum(poses.counts.values()), round(build_seconds, 2), params.layout,
                        params.hidden, result.epochs, result.seconds, result.samples_per_second,
                        round(result.metrics.accuracy, 4))


def to_markdown(bench: KeypointsBench) -> str:
    lines = [f"# Keypoint pipeline on {bench.machine}", "",
             f"{bench.cpu_count} CPUs, Python {bench.python}, interpreter threads "
             f"{bench.threads or 'default'}.", "",
             "## Pose extraction (BlazePose, TFLite interpreter)", "",
             "| crop | image | size | person | median ms | p90 ms |", "|---|---|---|---|---|---|"]
    for c in bench.extraction:
        lines.append(f"| {c.crop} | {c.image} | {c.size[1]}x{c.size[0]} | "
                     f"{'yes' if c.found else 'no'} | {c.median_ms} | {c.p90_ms} |")
    t = bench.training
    if t is not None:
        lines += ["", "## Keypoint classifier training", "",
                  f"Poses dataset: {t.dataset_samples} samples built in "
                  f"{t.dataset_build_seconds} s. MLP {t.hidden} on {t.layout}: {t.epochs} epochs "
                  f"in {t.seconds} s ({t.samples_per_second} samples/s), test accuracy "
                  f"{t.test_accuracy}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="results folder [default: per machine]")
    args = parser.parse_args()
    bench = KeypointsBench(machine=machine_slug(), cpu_count=os.cpu_count(),
                           python=platform.python_version(), threads=args.threads)
    bench.extraction = bench_extraction(args.repeats, args.threads)
    bench.training = bench_training(args.epochs)
    out = results_dir(args.out, bench.machine)
    write_results(out, "keypoints", asdict(bench), to_markdown(bench))
    print(to_markdown(bench))


if __name__ == "__main__":
    main()
