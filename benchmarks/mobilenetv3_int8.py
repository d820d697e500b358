"""Is int8 MobileNetV3 faster than fp32 on this machine? With and without the hard-swish rewrite.

XNNPACK does not run int8 HARD_SWISH, so a plain full-integer MobileNetV3 splits
into many delegate partitions with reference kernels between them and ends up
slower than float32. ``edgepose convert --hardswish-rewrite on`` rewrites
hard-swish as ``relu6(x + 3) * (x / 6)`` (ADD/MUL ops XNNPACK takes in int8).

For each variant this script trains a MobileNetV3 end to end (weights=None:
nothing is downloaded) on real sklearn digits upscaled to SIZE, saves it as a
run directory,
converts fp32 + int8 without and with the rewrite, and
records latency (median of --runs invokes, 1 thread, XNNPACK), partitions and
accuracy drift into benchmarks/results/<machine>/mobilenetv3_int8.json/.md.

    .venv/bin/python benchmarks/mobilenetv3_int8.py [--variants small,large] [--size 224]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from benchmark_utils import add_to_path, results_dir, write_results  # noqa: E402  (the one path set-up)


def build_run(root: Path, variant: str, size: int, per_class: int, epochs: int) -> Path:
    """MobileNetV3 run directory on digits (see convert_matrix.build_run)."""
    add_to_path("benchmarks")
    from convert_matrix import build_run as build

    return build(root, f"mobilenetv3{variant}", size, per_class, epochs)


def measure(run: Path, rewrite: str, runs: int) -> dict:
    from edgepose.converters import convert_run
    from edgepose.converters.model_outputs import median_latency_ms

    start = time.perf_counter()
    report = convert_run(run, ["fp32", "int8"], hardswish_rewrite=rewrite)
    seconds = time.perf_counter() - start
    out = {"rewrite": rewrite, "convert_seconds": round(seconds, 1),
           "keras_accuracy": report.keras_accuracy}
    first = _first_input(run)
    for mode in report.modes:
        latency = median_latency_ms(mode.path, first, runs=runs, warmup=10)
        out[mode.mode] = {"latency_ms": round(latency, 3), "partitions": mode.partitions,
                          "delegation": mode.delegation, "ops_outside": mode.ops_outside,
                          "accuracy": mode.drift.accuracy, "drop_pct": mode.drop_pct,
                          "top1_agreement": mode.drift.top1_agreement,
                          "mean_kl": mode.drift.mean_kl, "size_bytes": mode.size_bytes}
    return out


def fallback(run: Path, budget: float) -> dict:
    """int8 with --auto-fallback under a tight budget: accuracy before and after."""
    from edgepose.converters import convert_run
    from edgepose.errors import DriftExceeded

    try:
        convert_run(run, ["int8"], max_drop=budget, auto_fallback_enabled=True)
    except DriftExceeded:
        pass  # the report is written before the error; read it back
    from edgepose.fileio import read_json
    from edgepose.rundir import RunDir

    report = read_json(RunDir(run).conversion_report_path())
    modes = {m["mode"]: m for m in report["modes"]}
    out = {"budget": budget, "steps": (report.get("fallback") or {}).get("steps")}
    for name, m in modes.items():
        out[name] = {"accuracy": m["drift"]["accuracy"], "size_bytes": m["size_bytes"],
                     "latency_ms": m["latency_ms"], "partitions": m["partitions"],
                     "float_layers": len(m["float_layers"])}
    return out


def _first_input(run: Path):
    from edgepose.rundir import RunDir, load_inputs

    r = RunDir.open(run)
    return load_inputs(r.splits, r.splits.samples("test")[:1], r.config)[0][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="small,large")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--max-drop", type=float, default=2.0)
    parser.add_argument("--fallback-budget", type=float, default=0.0,
                        help="--max-drop for the auto-fallback demonstration")
    args = parser.parse_args()

    from edgepose.bench.device import machine_slug

    results = {"machine": machine_slug(), "size": args.size, "threads": 1,
               "runtime": "ai-edge-litert + XNNPACK", "per_class": args.per_class,
               "epochs": args.epochs, "max_drop": args.max_drop, "variants": {}}
    for variant in args.variants.split(","):
        with tempfile.TemporaryDirectory(prefix=f"mnv3-{variant}-") as tmp:
            run = build_run(Path(tmp), variant, args.size, args.per_class, args.epochs)
            rows = []
            for rewrite in ("off", "on"):
                target = Path(tmp) / f"run_{rewrite}"
                shutil.copytree(run, target)
                rows.append(measure(target, rewrite, args.runs))
                print(variant, rows[-1], flush=True)
            results["variants"][variant] = rows
            results.setdefault("fallback", {})[variant] = fallback(Path(tmp) / "run_on",
                                                                   args.fallback_budget)
            print(variant, "fallback", results["fallback"][variant], flush=True)
    out_dir = results_dir(machine=results["machine"])
    write_results(out_dir, "mobilenetv3_int8", results, to_markdown(results))
    print(to_markdown(results))


def to_markdown(results: dict) -> str:
    lines = [f"# MobileNetV3 int8 vs fp32 ({results['machine']}, {results['size']}px, "
             f"1 thread, {results['runtime']})", "",
             f"Trained end to end from weights=None for {results['epochs']} epochs on "
             f"{results['per_class']}/class sklearn digits (60% train); drift budget "
             f"{results['max_drop']} points.", "",
             "| variant | hard-swish rewrite | fp32 ms | int8 ms | int8/fp32 | int8 partitions "
             "| int8 ops outside XNNPACK | int8 drop pts | top-1 agree |",
             "|---|---|---|---|---|---|---|---|---|"]
    for variant, rows in results["variants"].items():
        for row in rows:
            fp32, int8 = row["fp32"], row["int8"]
            outside = ", ".join(f"{k} x{v}" for k, v in int8["ops_outside"].items()) or "-"
            lines.append(f"| {variant} | {row['rewrite']} | {fp32['latency_ms']:.2f} | "
                         f"{int8['latency_ms']:.2f} | "
                         f"{int8['latency_ms'] / fp32['latency_ms']:.2f} | "
                         f"{int8['partitions']} | {outside} | {int8['drop_pct']:.2f} | "
                         f"{100 * int8['top1_agreement']:.1f}% |")
    for variant, fb in results.get("fallback", {}).items():
        lines += ["", f"## {variant}: int8 --auto-fallback --max-drop {fb['budget']}", "",
                  "| model | accuracy | KB | ms | partitions | float layers |",
                  "|---|---|---|---|---|---|"]
        for name in ("int8", "int8-fallback"):
            if name in fb:
                m = fb[name]
                lines.append(f"| {name} | {100 * m['accuracy']:.1f}% | "
                             f"{m['size_bytes'] / 1024:.0f} | {m['latency_ms']:.2f} | "
                             f"{m['partitions']} | {m['float_layers']} |")
        if fb.get("steps"):
            lines.append("\nsteps (float layers -> validation drop): " + ", ".join(
                f"{s['float_layers']} -> {s['val_drop_pct']:.2f}" for s in fb["steps"]))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
