"""Why int8 saves so few instructions on the Pi 4's Cortex-A72, and what could help.

    python benchmarks/arm/a72_analysis.py [--pi 4,5] [--workdir DIR] [--backbones ...]

For MobileNetV2 and EfficientNetB0 at 224 px (benchmarks/arm/arm_models.py: real
architectures, weights=None, BatchNorm statistics and int8 calibration from
photographs, converted as ``edgepose convert`` does) and conversion variants that
could change which XNNPACK micro-kernels run:

- ``fp32``; ``int8`` (per-channel weights, int8 input/output: edgepose's default);
- ``int8_pertensor``: one scale per weight tensor (converter flag
  ``_experimental_disable_per_channel``), which XNNPACK runs with its qs8 (not qc8w)
  kernels and their own requantization;
- ``int8_uint8io``: uint8 input/output (the body stays int8: the TF2 converter has
  no uint8 body; a QUANTIZE op at each end converts).

it profiles one invoke on each emulated CPU with the instruction plugin
(:func:`edgepose.arm.profile.profile_emulated`): instructions per function (XNNPACK
micro-kernels by name) and per instruction class, and multiply-accumulate lanes
executed. MACs per MAC instruction is the evidence: the A72 (ARMv8.0) has no
SDOT, so XNNPACK's int8 kernels widen int8 to int16 and use SMLAL (4 MACs per
instruction with a 32-bit accumulator, as FMLA's 4 fp32 lanes), plus the widening
and requantization work fp32 does not need; the A76 (ARMv8.2 dot product) does 16
int8 MACs per SDOT.

Writes benchmarks/results/<machine>/a72_analysis.json and .md. Counts are exact and
independent of machine load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark_utils

from benchmark_utils import results_dir, write_results  # noqa: E402

from edgepose.arm.emulated import qemu_version  # noqa: E402
from edgepose.arm.profile import CLASSES, profile_emulated  # noqa: E402
from edgepose.bench.device import machine_slug  # noqa: E402
from edgepose.bench.macs import count_macs  # noqa: E402

SIZE = 224
TOP = 8
TARGETS = {4: 0.7, 5: 0.6}  # int8 / fp32 instruction ratio the issue asks for, per Pi


def build_models(backbones: list[str], workdir: Path) -> dict[str, dict[str, Path]]:
    """Convert (or find in ``workdir``) every backbone's variants; name -> variant -> path."""
    from arm_models import build_backbone, convert_variant, photo_crops

    models = {}
    for name in backbones:
        stem = workdir / f"{name}_{SIZE}"
        paths = {"fp32": Path(f"{stem}_fp32.tflite"), "int8": Path(f"{stem}_int8.tflite"),
                 "int8_pertensor": Path(f"{stem}_int8_pertensor.tflite"),
                 "int8_uint8io": Path(f"{stem}_int8_uint8io.tflite")}
        if not (paths["fp32"].is_file() and paths["int8"].is_file()):
            build_backbone(name, SIZE, workdir)
        saved = Path(f"{stem}_savedmodel")
        calibration = photo_crops(SIZE, 64, seed=2)  # as build_backbone calibrates
        if not paths["int8_pertensor"].is_file():
            convert_variant(saved, paths["int8_pertensor"], calibration, per_channel=False)
        if not paths["int8_uint8io"].is_file():
            convert_variant(saved, paths["int8_uint8io"], calibration, io="uint8")
        models[name] = paths
    return models


def mac_instructions(by_class: dict[str, int]) -> int:
    """Instructions that multiply (the classes the plugin counts MAC lanes for)."""
    return sum(by_class[c] for c in CLASSES[:3]) + by_class[CLASSES[5]]


def measure(models: dict[str, dict[str, Path]], pis: list[int]) -> list[dict]:
    from arm_models import photo_crops

    sample = photo_crops(SIZE, 3, seed=7)[0]  # the input of benchmarks/arm/instructions.py
    rows = []
    for pi in pis:
        for name, variants in models.items():
            macs = count_macs(variants["fp32"]).total
            fp32_instructions = None
            for variant, path in variants.items():
                started = time.monotonic()
                p = profile_emulated(path, pi, sample)
                if variant == "fp32":
                    fp32_instructions = p.instructions
                multiplying = mac_instructions(p.by_class)
                lanes = p.int_macs + p.fp_macs
                row = {
                    "pi": pi, "core": p.core, "model": f"{name}_{SIZE}", "variant": variant,
                    "instructions": p.instructions,
                    "ratio_to_fp32": round(p.instructions / fp32_instructions, 4),
                    "model_macs": macs,
                    "instructions_per_model_mac": round(p.instructions / macs, 3),
                    "mac_lanes_executed": lanes, "int_mac_lanes": p.int_macs,
                    "fp_mac_lanes": p.fp_macs, "multiply_instructions": multiplying,
                    "mac_lanes_per_multiply_instruction": round(lanes / multiplying, 2)
                    if multiplying else None,
                    "by_class": p.by_class,
                    "top_functions": [{"function": f, "instructions": n,
                                       "share": round(n / p.instructions, 4),
                                       "classes": p.function_classes.get(f, {})}
                                      for f, n in list(p.by_function.items())[:TOP]],
                    "profiled_sum_matches_count": sum(p.by_function.values()) == p.instructions,
                }
                rows.append(row)
                print(f"pi{pi} {name} {variant}: {p.instructions:,} insns (x{row['ratio_to_fp32']}"
                      f" fp32), {row['mac_lanes_per_multiply_instruction']} MACs/mul-insn; top "
                      f"{row['top_functions'][0]['function']} "
                      f"({time.monotonic() - started:.0f} s)", flush=True)
    return rows


def _short(function: str) -> str:
    return function.split(":", 1)[1] if ":" in function else function


def verdicts(rows: list[dict]) -> list[str]:
    """One sentence per board and model: the best int8 ratio against the issue's target."""
    lines = []
    for pi, target in TARGETS.items():
        for model in dict.fromkeys(r["model"] for r in rows if r["pi"] == pi):
            mine = [r for r in rows if r["pi"] == pi and r["model"] == model
                    and r["variant"] != "fp32"]
            if not mine:
                continue
            best = min(mine, key=lambda r: r["ratio_to_fp32"])
            reached = best["ratio_to_fp32"] <= target
            lines.append(f"Pi {pi} {model}: best int8 variant `{best['variant']}` at "
                         f"{best['ratio_to_fp32']:.2f}x fp32 instructions (target <= {target}): "
                         f"{'reached' if reached else 'not reached'}.")
    return lines


def markdown(results: dict) -> str:
    rows = results["rows"]
    lines = [f"# int8 vs fp32 instructions on emulated Cortex-A72 / A76 ({results['date']})",
             "", f"Host `{results['machine']}`, {results['qemu']}, one thread, XNNPACK, one "
             f"profiled invoke at {SIZE} px (photo_crops seed 7, sample 0). Exact counts from the "
             "QEMU plugin's per-block profile (benchmarks/arm/insn_count.c), pcs named from the "
             "guest's /proc/self/maps and the libraries' symbol tables (edgepose/arm/profile.py). "
             "Script: benchmarks/arm/a72_analysis.py.", "",
             "Class columns: share of the invoke's instructions. MAC lanes / multiply insn: "
             "multiply-accumulate lanes executed per multiplying SIMD instruction (SDOT 4S = "
             "16, SMLAL/SMULL 8H = 8, FMLA 4S = 4). Executed MAC lanes / model MAC: >1 is "
             "work on padding and tile remainders.", "",
             "| board | model | variant | instructions | x fp32 | insns / model MAC "
             "| MAC lanes / multiply insn | executed MAC lanes / model MAC | int8 dot "
             "| int8 widening MAC | int widen/add | float FMA | requant | SIMD loads |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        c = r["by_class"]
        share = {k: c[k] / r["instructions"] for k in c}
        lines.append(
            f"| Pi {r['pi']} {r['core']} | {r['model']} | {r['variant']} | "
            f"{r['instructions']:,} | {r['ratio_to_fp32']:.2f} | "
            f"{r['instructions_per_model_mac']:.2f} | {r['mac_lanes_per_multiply_instruction']} | "
            f"{r['mac_lanes_executed'] / r['model_macs']:.2f} | "
            f"{share[CLASSES[0]]:.1%} | {share[CLASSES[1]]:.1%} | {share[CLASSES[3]]:.1%} | "
            f"{share[CLASSES[5]]:.1%} | {share[CLASSES[4]]:.1%} | {share[CLASSES[7]]:.1%} |")
    lines += ["", "## Verdict against the targets (int8 <= 0.7x fp32 on A72, <= 0.6x on A76)",
              ""] + [f"- {v}" for v in results["verdicts"]]
    lines += ["", "## Top functions per run (share of the invoke's instructions)", ""]
    for r in rows:
        tops = "; ".join(f"`{_short(t['function'])}` {t['share']:.1%}"
                         for t in r["top_functions"][:5])
        lines.append(f"- Pi {r['pi']} {r['model']} {r['variant']}: {tops}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pi", default="4,5")
    parser.add_argument("--backbones", default="mobilenet_v2,efficientnet_b0")
    parser.add_argument("--workdir", type=Path,
                        default=Path.home() / ".cache" / "edgepose" / "arm" / "analysis")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--markdown-only", action="store_true",
                        help="rewrite the .md from the stored .json (no emulator run)")
    args = parser.parse_args()
    if args.markdown_only:
        from edgepose.fileio import read_json

        out = results_dir()
        results = read_json(out / "a72_analysis.json")
        write_results(out, "a72_analysis", results, markdown(results))
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    models = build_models(args.backbones.split(","), args.workdir)
    rows = measure(models, [int(p) for p in args.pi.split(",")])
    results = {"machine": machine_slug(), "qemu": qemu_version(),
               "date": time.strftime("%Y-%m-%d"), "size": SIZE, "rows": rows,
               "verdicts": verdicts(rows)}
    if args.no_write:
        print(markdown(results))
        return 0
    out = results_dir(machine=results["machine"])
    write_results(out, "a72_analysis", results, markdown(results))
    print(f"wrote {out / 'a72_analysis.json'} and a72_analysis.md")
    return 0


if __name__ == "__main__":
    np.set_printoptions(suppress=True)
    sys.exit(main())
