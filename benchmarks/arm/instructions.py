"""Instructions per invoke on emulated Pi 4 / Pi 5 CPUs, per backbone x mode.

    python benchmarks/arm/instructions.py [--sizes 96,224] [--pi 4,5] [--kernels xnnpack]
                                          [--check]

Builds real architectures (benchmarks/arm/arm_models.py: MobileNetV2, MobileNetV3-Small,
EfficientNetB0 with weights=None and BatchNorm statistics from photographs, plus
the tiny trained digits net), converts each to fp32 and full-int8 as ``edgepose
convert`` does, and runs each model as its own emulator job (so its count does not
depend on the others) under ``qemu-aarch64 -cpu cortex-a72 / cortex-a76`` with the
instruction-count plugin.

Writes benchmarks/results/<machine>/arm_instructions.json and .md. The count is
exact and repeatable for the same code, model and input, so it is a noise-free
regression metric: ``--check`` compares against the stored file and exits 3 when
a count grew by more than ``--tolerance`` (default 0.1 %: heap-layout effects of
unrelated Python changes move counts by a few instructions). The "Pi est." column
is instructions / (assumed IPC x clock), an estimate and not a measurement.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from arm_models import BACKBONES, build_backbone, build_tiny, photo_crops  # noqa: E402

from edgepose.arm.cpus import pi_cpu  # noqa: E402
from edgepose.arm.emulated import qemu_version, run_emulated  # noqa: E402
from edgepose.bench.device import machine_slug  # noqa: E402
from edgepose.fileio import read_json, write_json, write_text  # noqa: E402


def measure(sizes: list[int], pis: list[int], kernels: tuple[str, ...], workdir: Path) -> dict:
    built = [build_tiny(workdir)[0]] + [build_backbone(name, size, workdir)
                                        for size in sizes for name in BACKBONES]
    inputs = {b.size: photo_crops(b.size, 3, seed=7) for b in built}
    rows = []
    for pi in pis:
        for model in built:
            for path in (model.fp32, model.int8):
                started = time.monotonic()
                result = run_emulated([path], pi, inputs[model.size], kernels=kernels,
                                      repeats=5)
                for run in result.runs:
                    rows.append({
                        "pi": pi, "core": result.core, "python": result.guest_python,
                        "model": model.name, "size": model.size, "mode": run.mode,
                        "kernels": run.kernels, "delegation": run.delegation,
                        "instructions_per_invoke": run.instructions_per_invoke,
                        "instruction_counts": run.instruction_counts,
                        "arm_x86_identical": run.identical, "max_abs_diff": run.max_abs_diff,
                        "pi_estimate_ms": run.pi_estimate_ms,
                        "emulated_ms_per_invoke": run.emulated_ms_per_invoke,
                    })
                    print(f"pi{pi} {model.name} {run.mode} {run.kernels}: "
                          f"{run.instructions_per_invoke} insns/invoke, identical="
                          f"{run.identical} ({time.monotonic() - started:.0f} s)", flush=True)
    return {
        "machine": machine_slug(), "qemu": qemu_version(), "backend": result.backend,
        "date": time.strftime("%Y-%m-%d"), "sizes": sizes,
        "settings": {"num_threads": 1, "warmup": 3, "repeats": 5, "reported": "median",
                     "input": "photo_crops(seed=7)[0]", "kernels": list(kernels)},
        "assumptions": {f"pi{p}": {"core": pi_cpu(p).core, "ipc": list(pi_cpu(p).ipc),
                                   "clock_ghz": list(pi_cpu(p).clock_ghz)} for p in pis},
        "rows": rows,
    }


def markdown(results: dict) -> str:
    lines = [f"# Instructions per invoke on emulated Pi CPUs ({results['date']})", "",
             f"Host `{results['machine']}`, {results['qemu']}, {results['backend']}, "
             f"inputs {', '.join(map(str, results['sizes']))} px (tiny: 32 px), one thread, "
             "weights=None with BatchNorm statistics from photographs, converted as `edgepose "
             "convert` does (fixed batch of 1; int8 with the hard-swish rewrite). Exact counts "
             "from the "
             "QEMU plugin (benchmarks/arm/insn_count.c); **Pi est.** = instructions / "
             "(assumed IPC x clock), see docs/arm.md: an estimate, not a measurement. "
             "Emulator ms is emulator wall time, not a Pi latency.", "",
             "| board | model | mode | kernels | delegation | insns/invoke | ARM = x86 "
             "| Pi est. ms | emulator ms |",
             "|---|---|---|---|---|---:|---|---|---:|"]
    for r in results["rows"]:
        same = "identical" if r["arm_x86_identical"] else f"max diff {r['max_abs_diff']:.3g}"
        est = r["pi_estimate_ms"]
        lines.append(f"| Pi {r['pi']} {r['core']} | {r['model']} | {r['mode']} | "
                     f"{r['kernels']} | {r['delegation']} | "
                     f"{r['instructions_per_invoke']:,} | {same} | "
                     f"{est[0]:.1f}-{est[1]:.1f} | {r['emulated_ms_per_invoke']:.0f} |")
    return "\n".join(lines) + "\n"


def regressions(new: dict, old: dict, tolerance: float) -> list[str]:
    """Rows whose count grew beyond ``tolerance`` (a ratio) over the stored baseline."""
    def key(r):
        return (r["pi"], r["model"], r["mode"], r["kernels"])

    baseline = {key(r): r["instructions_per_invoke"] for r in old["rows"]}
    found = []
    for row in new["rows"]:
        before = baseline.get(key(row))
        if before:
            ratio = row["instructions_per_invoke"] / before
            if ratio > 1 + tolerance:
                found.append(f"{key(row)}: {before:,} -> {row['instructions_per_invoke']:,} "
                             f"(x{ratio:.4f})")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="96,224", help="input sizes of the backbones")
    parser.add_argument("--pi", default="4,5")
    parser.add_argument("--kernels", default="xnnpack", help="xnnpack, reference or both")
    parser.add_argument("--check", action="store_true", help="compare with the stored file")
    parser.add_argument("--tolerance", type=float, default=0.001)
    args = parser.parse_args()
    kernels = ("xnnpack", "reference") if args.kernels == "both" else (args.kernels,)
    with tempfile.TemporaryDirectory() as tmp:
        results = measure([int(v) for v in args.sizes.split(",")],
                          [int(p) for p in args.pi.split(",")], kernels, Path(tmp))
    out = ROOT / "benchmarks" / "results" / results["machine"]
    target = out / "arm_instructions.json"
    if args.check:
        found = regressions(results, read_json(target), args.tolerance)
        print("\n".join(found) or "no instruction-count regression")
        return 3 if found else 0
    write_json(target, results)
    write_text(out / "arm_instructions.md", markdown(results))
    print(f"wrote {target} and arm_instructions.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
