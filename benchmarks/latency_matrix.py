"""Latency matrix: backbone x input size x mode x threads, with MACs and achieved MAC/s.

For each backbone and size this script builds a run directory on real sklearn
digits (``convert_matrix.build_run``: Keras applications, weights=None, nothing
downloaded), converts it in every mode with ``convert_run`` (``int8-fallback`` =
``--auto-fallback --max-drop``; it only exists when plain int8 is over that
budget), then measures every .tflite with ``edgepose.bench.run_bench`` at each
thread count: load time, invoke p50/p90, end-to-end p50 (PNG decode + resize +
quantize + invoke + top-1), accuracy, drift vs Keras and top-1 agreement on the
held-out test split. MACs per inference come from the graph
(``edgepose.bench.macs``); MAC/s = MACs / invoke p50.

The thread counts are compared with each other, so they are timed interleaved
(:func:`time_model`): ``--blocks`` rounds, each timing every thread count once
with ``runs // blocks`` runs, the order alternating (1,2 then 2,1 ...); a figure
is the median over the blocks of each block's p50 (p90), and the lowest and
highest block p50 are kept beside it. Load on a shared machine that comes and
goes then hits every thread count alike instead of whichever block ran last.

Each build and each measurement runs in its own process (build with TensorFlow,
measure without), so load times and memory are those of a device process. Runs
are kept in ``--cache`` (default ``.cache/bench/latency_matrix``) and reused when
their settings match. Results: benchmarks/results/<machine>/latency_matrix.json/.md.

    .venv/bin/python benchmarks/latency_matrix.py [--backbones mobilenet_v2,...]
        [--sizes 224,96] [--modes fp32,fp16,dynamic,int8,int8-fallback] [--threads 1,2]
        [--training full|probe] [--runs 100] [--blocks 4] [--quick]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from benchmark_utils import ROOT, add_to_path, results_dir, write_results  # noqa: E402  (the one path set-up)

FALLBACK = "int8-fallback"
# edgepose backbone name -> convert_matrix.build_run name
BACKBONES = {"mobilenet_v2": "mobilenetv2", "mobilenet_v3_small": "mobilenetv3small",
             "mobilenet_v3_large": "mobilenetv3large", "efficientnet_b0": "efficientnetb0"}


def _settings(args: argparse.Namespace, backbone: str, size: int) -> dict:
    return {"backbone": backbone, "size": size, "per_class": args.per_class,
            "epochs": args.epochs, "training": args.training, "modes": args.modes,
            "max_drop": args.max_drop}


def build(args: argparse.Namespace, backbone: str, size: int) -> None:
    """Train and convert one backbone x size into the cache (runs in its own process)."""
    add_to_path("benchmarks")
    from convert_matrix import build_run

    from edgepose.converters import convert_run
    from edgepose.errors import DriftExceeded
    from edgepose.fileio import write_json

    folder = args.cache / f"{backbone}_{size}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    run = build_run(folder, BACKBONES[backbone], size, args.per_class, args.epochs,
                    args.training)
    train_seconds = time.perf_counter() - start
    modes = [m for m in args.modes.split(",") if m != FALLBACK]
    fallback = FALLBACK in args.modes.split(",")
    try:
        convert_run(run, modes, auto_fallback_enabled=fallback,
                    max_drop=args.max_drop if fallback else None)
    except DriftExceeded as exc:  # everything is written before it is raised
        print(f"note: {exc}", flush=True)
    write_json(folder / "matrix_settings.json",
               dict(_settings(args, backbone, size), train_seconds=round(train_seconds, 1)))


def block_orders(threads: list[int], blocks: int) -> list[list[int]]:
    """The thread counts of each block, in the order they are timed.

    Every block times every thread count once; the order is as given in even blocks
    and reversed in odd ones (``[1, 2]``: 1,2 then 2,1 then 1,2 ...), so drifting load
    (a burst, a clock change) hits each thread count as often first as last: the same
    interleaving as decode_latency.py's and int8_matrix.py's loops.
    """
    return [list(threads) if b % 2 == 0 else list(reversed(threads)) for b in range(blocks)]


def combine(block_rows: list, block_busy: list[list[str]]) -> dict:
    """The timing fields of one model x thread count from its blocks (``BenchRow`` each).

    ``invoke_p50_ms``/``invoke_p90_ms``/``e2e_p50_ms``/``e2e_p90_ms``: the median over
    the blocks of each block's p50/p90 (ms); ``invoke_p50_min_ms``/``_max_ms``: the
    lowest and highest block invoke p50 (how stable the figure is), and
    ``invoke_p50_blocks_ms`` every block's, in timing order; ``load_ms``: median load
    time (each block loads a fresh interpreter); ``peak_rss_mb``: the highest;
    ``busy``: every block's busy-machine warnings (``block i/B: ...``), in order.
    """
    p50s = [r.invoke.p50_ms for r in block_rows]
    count = len(block_rows)
    return {
        "load_ms": float(np.median([r.load_ms for r in block_rows])),
        "invoke_p50_ms": float(np.median(p50s)),
        "invoke_p90_ms": float(np.median([r.invoke.p90_ms for r in block_rows])),
        "invoke_p50_min_ms": min(p50s), "invoke_p50_max_ms": max(p50s),
        "invoke_p50_blocks_ms": p50s,
        "e2e_p50_ms": float(np.median([r.end_to_end.p50_ms for r in block_rows])),
        "e2e_p90_ms": float(np.median([r.end_to_end.p90_ms for r in block_rows])),
        "peak_rss_mb": max(r.peak_rss_mb for r in block_rows),
        "blocks": count, "runs_per_block": block_rows[0].invoke.count,
        "busy": list(dict.fromkeys(f"block {i + 1}/{count}: {w}"
                                   for i, warnings in enumerate(block_busy) for w in warnings)),
    }


def concerning(warnings: list[str], threads: int) -> list[str]:
    """The busy warnings that concern the row timed with ``threads``.

    Machine-wide ones (CPU use, load average) concern every row of the block; a
    timing-spread one names its row (``... t=2 xnnpack: invoke p90 ...``,
    :func:`edgepose.bench.checks.busy_warnings`) and concerns only that thread count.
    """
    return [w for w in warnings if " t=" not in w or f" t={threads} " in w]


def time_model(path: Path, threads: list[int], runs: int, warmup: int, blocks: int,
               bench=None) -> list[dict]:
    """Time one .tflite at every thread count in ``blocks`` interleaved blocks; a dict each.

    Block order: :func:`block_orders`; each block is one ``bench`` call
    (:func:`edgepose.bench.run_bench`, injectable for tests) with ``runs // blocks``
    timed runs (at least 1) per thread count after ``warmup``, in a fresh interpreter.
    Accuracy and drift do not depend on the thread count, so only the first block
    scores the whole test split against the Keras outputs; the others give the
    end-to-end loop its files (decode included, like the first) from a stratified
    subset of ``runs // blocks`` test images, with no reference. Returns, per thread
    count in ``threads`` order, :func:`combine`'s fields plus the first block's
    accuracy, drift, delegation and sample count.
    """
    if bench is None:
        from edgepose.bench import run_bench as bench

    per_block = max(1, runs // blocks)
    by_threads: dict[int, list] = {n: [] for n in threads}
    busy: dict[int, list[list[str]]] = {n: [] for n in threads}
    first = None
    for index, order in enumerate(block_orders(threads, blocks)):
        if index == 0:
            result = bench([path], split="test", threads=order, runs=per_block, warmup=warmup,
                           reference="keras")
            first = result
        else:
            result = bench([path], split="test", threads=order, runs=per_block, warmup=warmup,
                           reference="none", max_samples=per_block)
        # bench's own contention checks (CPU use around the block, p90/p50 spread)
        warnings = [w for w in result.warnings if w.startswith("machine busy")]
        for row in result.rows:
            by_threads[row.threads].append(row)
            busy[row.threads].append(concerning(warnings, row.threads))
    scored = {row.threads: row for row in first.rows}
    out = []
    for n in threads:
        row = scored[n]
        drift = row.drift
        out.append(dict(
            threads=n, size_bytes=row.size_bytes, delegation=row.delegation,
            accuracy=row.accuracy,
            drop_pts=None if drift is None or drift.accuracy_delta is None
            else -100.0 * drift.accuracy_delta,
            top1_agreement=drift.top1_agreement if drift else None,
            mean_kl=drift.mean_kl if drift else None, samples=first.settings.samples,
            **combine(by_threads[n], busy[n])))
    return out


def measure(run: Path, threads: list[int], runs: int, warmup: int, blocks: int = 4,
            bench=None) -> list[dict]:
    """Bench every converted model of ``run`` (no TensorFlow in this process).

    Each model is timed by :func:`time_model` (thread counts interleaved in ``blocks``
    blocks); one row per model x thread count, with its MACs and MAC/s at the median
    invoke p50 and the conversion report's figures.
    """
    from edgepose.bench.macs import count_macs
    from edgepose.rundir import RunDir

    report = json.loads(RunDir(run).conversion_report_path().read_text())
    rows = []
    for mode in report["modes"]:
        path = Path(mode["path"])
        if not path.is_absolute():
            path = run / path.name
        macs = count_macs(path)
        for timed in time_model(path, threads, runs, warmup, blocks, bench):
            rows.append({
                "mode": mode["mode"], "convert_seconds": mode["conversion_seconds"],
                **timed,
                "macs": macs.total, "macs_per_s": macs.per_second(timed["invoke_p50_ms"]),
                "float_layers": len(mode.get("float_layers") or []),
                "keras_accuracy": report.get("keras_accuracy")})
    return rows


INTEGER_MODES = ("dynamic", "int8", FALLBACK, "int16x8")  # XNNPACK runs these on int8 kernels


# AMD family 25 (Zen 3, Zen 4) has two 256-bit FMA pipes: Zen 4 runs a 512-bit AVX-512
# instruction as two 256-bit halves, so AVX-512 doubles no throughput there (AMD, "Software
# Optimization Guide for AMD Family 19h Processors", 56665, Zen 4 floating-point unit).
_HALF_WIDTH_AVX512 = {("AuthenticAMD", "25")}


def nominal_peak(cpuinfo: str | None = None) -> dict:
    """Nominal MAC/s of one core from /proc/cpuinfo: MHz x 2 FMA units x SIMD lanes.

    An upper bound for comparison, not a measurement: it assumes two vector pipes
    (true of recent Xeon, Zen and Cortex-A76, not of every core) as wide as the
    widest vector ISA the CPU reports, except where that ISA runs on narrower
    pipes (:data:`_HALF_WIDTH_AVX512`: AVX-512 on Zen 4 counts as 8 fp32 lanes).
    int8 peak: 4x fp32 with a dot-product instruction (VNNI, SDOT: four int8
    products per 32-bit lane), else 2x. ``cpuinfo``: the file's text (read when None).
    """
    from edgepose.bench.device import cpu_flags

    if cpuinfo is None:
        cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.M)
    vendor = re.search(r"^vendor_id\s*:\s*(\S+)", cpuinfo, re.M)
    family = re.search(r"^cpu family\s*:\s*(\S+)", cpuinfo, re.M)
    flags = cpu_flags(cpuinfo)
    lanes, isa = ((16, "AVX-512") if "avx512f" in flags else (8, "AVX2") if "avx2" in flags
                  else (4, "128-bit SIMD"))
    if lanes == 16 and vendor and family and (vendor[1], family[1]) in _HALF_WIDTH_AVX512:
        lanes, isa = 8, "AVX-512 on 256-bit pipes"
    dot = flags & {"avx512_vnni", "avx_vnni", "asimddp"}
    if mhz is None:
        return {"fp32_macs_per_s": None, "note": "no clock in /proc/cpuinfo"}
    peak = float(mhz.group(1)) * 1e6 * 2 * lanes
    return {"fp32_macs_per_s": peak, "int8_macs_per_s": peak * (4 if dot else 2),
            "mhz": float(mhz.group(1)), "isa": isa, "lanes": lanes,
            "note": f"{float(mhz.group(1)):.0f} MHz x 2 FMA x {lanes} fp32 lanes ({isa}); int8 "
                    + (f"{4}x with {sorted(dot)[0]}" if dot else "2x (no dot-product ISA)")}


def peak_share(row: dict, peak: dict) -> float | None:
    """Achieved MAC/s as a share of the nominal peak of the threads used, for the mode's type."""
    key = "int8_macs_per_s" if row["mode"] in INTEGER_MODES else "fp32_macs_per_s"
    rate = peak.get(key)
    return row["macs_per_s"] / (rate * (row["threads"] or 1)) if rate else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (``--quick`` applied); SystemExit for fewer than one block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--sizes", default="224,96")
    parser.add_argument("--modes", default=f"fp32,fp16,dynamic,int8,{FALLBACK}")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--training", choices=["full", "probe"], default="probe",
                        help="probe (default): quick, for timing; full: backprop through all")
    parser.add_argument("--max-drop", type=float, default=1.0,
                        help="accuracy budget (points) for int8-fallback")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--blocks", type=int, default=4,
                        help="rounds the thread counts are interleaved in (order alternating), "
                             "each with runs // blocks timed runs per thread count")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "bench" / "latency_matrix")
    parser.add_argument("--out", type=Path, help="results folder [benchmarks/results/<machine>]")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 backbones at 96 px, probe training, 20 runs")
    parser.add_argument("--build", nargs=2, metavar=("BACKBONE", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.backbones, args.sizes, args.training = "mobilenet_v3_small,mobilenet_v2", "96", \
            "probe"
        args.per_class, args.epochs, args.runs, args.warmup = 30, 3, 20, 5
    if args.blocks < 1:
        raise SystemExit(f"--blocks must be at least 1, not {args.blocks}")
    return args


def settings_of(args: argparse.Namespace) -> dict:
    """The settings a result records: every option but the internal and path ones."""
    return {k: v for k, v in vars(args).items() if k not in ("build", "measure", "cache", "out")}


def main() -> None:
    args = parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    if args.build:
        return build(args, args.build[0], int(args.build[1]))
    if args.measure:
        print(json.dumps(measure(args.measure, threads, args.runs, args.warmup, args.blocks)))
        return

    from edgepose.bench.device import device_info, machine_slug

    unknown = sorted(set(args.backbones.split(",")) - set(BACKBONES))
    if unknown:
        raise SystemExit(f"unknown backbones {unknown}; known: {', '.join(BACKBONES)}")
    out_dir = results_dir(args.out, machine_slug())
    from importlib import metadata

    runtime = f"ai_edge_litert {metadata.version('ai-edge-litert')}"
    results = {"machine": machine_slug(), "device": device_info(runtime), "peak": nominal_peak(),
               "settings": settings_of(args), "rows": []}
    me = [sys.executable, str(Path(__file__).resolve())]
    passthrough = ["--per-class", str(args.per_class), "--epochs", str(args.epochs),
                   "--training", args.training, "--modes", args.modes,
                   "--max-drop", str(args.max_drop), "--cache", str(args.cache)]
    for backbone in args.backbones.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            folder = args.cache / f"{backbone}_{size}"
            saved = folder / "matrix_settings.json"
            reuse = saved.is_file() and {k: v for k, v in json.loads(saved.read_text()).items()
                                         if k != "train_seconds"} == _settings(args, backbone,
                                                                               size)
            start = time.perf_counter()
            if not reuse:
                print(f"[{backbone} {size}] train + convert ({args.training})", flush=True)
                subprocess.run([*me, "--build", backbone, str(size), *passthrough], check=True)
            else:
                print(f"[{backbone} {size}] reusing {folder}", flush=True)
            settings = json.loads(saved.read_text())
            print(f"[{backbone} {size}] measure", flush=True)
            done = subprocess.run([*me, "--measure", str(folder / "run"), "--threads",
                                   args.threads, "--runs", str(args.runs),
                                   "--warmup", str(args.warmup), "--blocks", str(args.blocks)],
                                  check=True, capture_output=True, text=True)
            rows = json.loads(done.stdout.strip().splitlines()[-1])
            for row in rows:
                row.update(backbone=backbone, size=size,
                           train_seconds=settings["train_seconds"])
            results["rows"].extend(rows)
            print(f"[{backbone} {size}] {len(rows)} rows, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
            write_results(out_dir, "latency_matrix", results, to_markdown(results, out_dir))
    print(to_markdown(results, out_dir))


def _convert_matrix(folder: Path) -> tuple[dict, str | None]:
    """Accuracy rows of convert_matrix.json (longer full training) by (backbone, size, mode)."""
    path = folder / "convert_matrix.json"
    if not path.is_file():
        return {}, None
    data = json.loads(path.read_text())
    names = {v: k for k, v in BACKBONES.items()}
    rows = {(names.get(r["backbone"], r["backbone"]), r["size"], r["mode"]): r
            for r in data["rows"]}
    return rows, (f"{data['per_class']}/class, {data['training']!r} training, "
                  f"{data['epochs']} epochs")


def to_markdown(results: dict, folder: Path | None = None) -> str:
    """The matrix as one Markdown table, with the machine and how it was measured.

    Accuracy, drop and top-1 agreement are taken from convert_matrix.json (in
    ``folder``) when it has the same backbone, size and mode -- its models were
    trained end to end, and latency does not depend on the weight values --
    else they are this run's own, marked with a dagger.
    """
    from edgepose.converters.conversion_report import format_points  # never -0.00
    s, peak, device = results["settings"], results["peak"], results["device"]
    device = device if isinstance(device, dict) else vars(device)
    peak_rate = peak.get("fp32_macs_per_s")
    int8_rate = peak.get("int8_macs_per_s") or 0
    trained, recipe = _convert_matrix(folder) if folder else ({}, None)
    lines = [
        f"# Latency matrix ({results['machine']})", "",
        f"{device['cpu_model']}"
        + (f" ({device['cpu_id']})" if device.get("cpu_id") else "")
        + f", {device['cores']} cores, governor "
        f"{device['governor'] or 'unknown'}; "
        f"Python {device['python']}, {device['runtime'] or 'ai_edge_litert'}. Digits, "
        f"{s['per_class']}/class, backbones weights=None, {s['training']!r} training. Latency: "
        + _timing_text(s) + " XNNPACK; load = Classifier.from_file; "
        "e2e = PNG decode + resize + invoke + top-1. MACs counted from the graph; "
        "GMAC/s = MACs / invoke p50; "
        + (f"% peak = share of the nominal peak of the threads used, fp32 for fp32/fp16, int8 "
           f"for the integer modes ({peak_rate / 1e9:.0f} / {int8_rate / 1e9:.0f} GMAC/s per "
           f"core: {peak['note']})." if peak_rate else "no nominal peak (CPU clock unknown)."),
        "",
        "| backbone | px | mode | thr | KB | convert s | load ms | invoke p50 ms "
        "| block p50s ms | p90 ms | e2e p50 ms "
        "| MMAC | GMAC/s | % peak | acc | drop pts | top-1 agree |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    own_used = False
    for r in results["rows"]:
        other = trained.get((r["backbone"], r["size"], r["mode"]))
        if other is not None:
            acc, drop, agree, mark = (other["accuracy"], other["drop_pct"],
                                      other["top1_agreement"], "")
        else:
            acc, drop, agree, mark = r["accuracy"], r["drop_pts"], r["top1_agreement"], " †"
            own_used = True
        share = peak_share(r, peak)
        lines.append(
            f"| {r['backbone']} | {r['size']} | {r['mode']} | {r['threads']} | "
            f"{r['size_bytes'] / 1024:.0f} | {r['convert_seconds']:.1f} | {r['load_ms']:.1f} | "
            f"{r['invoke_p50_ms']:.2f} | {_block_range(r)} | "
            f"{r['invoke_p90_ms']:.2f} | {r['e2e_p50_ms']:.2f} | "
            f"{r['macs'] / 1e6:.1f} | {r['macs_per_s'] / 1e9:.1f} | "
            f"{'-' if share is None else f'{100 * share:.1f}'}"
            f"{' ‡' if share is not None and share > 1 else ''} | "
            f"{'-' if acc is None else f'{100 * acc:.1f}%'}{mark} | "
            f"{'-' if drop is None else format_points(drop)}{mark} | "
            f"{'-' if agree is None else f'{100 * agree:.1f}%'}{mark} |")
    lines.append("")
    if recipe:
        lines.append(f"Accuracy, drop (points vs Keras, test split) and top-1 agreement come from "
                     f"convert_matrix.md ({recipe}) where it has the same backbone, size and mode:"
                     " latency does not depend on the weight values, accuracy does.")
    if own_used:
        lines.append(f"† this run's own model ({s['training']!r} training"
                     + (": random backbone features with BatchNorm statistics from the data and "
                        "a trained head; int8 noise hurts such features far more than a trained "
                        "network, so these drops overstate what a trained model loses)"
                        if s["training"] == "probe" else ")") + ".")
    chance = sorted({f"{r['backbone']} {r['size']}" for r in results["rows"]
                     if r.get("keras_accuracy") is not None and r["keras_accuracy"] < 0.2})
    if chance:
        lines.append(f"The Keras model of this run did not learn (test accuracy < 20%, "
                     f"10 classes) for {', '.join(chance)}: its † figures say little.")
    busy = [f"{r['backbone']} {r['size']} {r['mode']} {r['threads']} thr" for r in
            sorted(results["rows"], key=lambda r: (r["backbone"], r["size"], r["mode"],
                                                   r["threads"])) if r.get("busy")]
    if busy:
        from edgepose.bench.checks import SPREAD_LIMIT

        lines.append(f"Machine busy while these models were timed (edgepose bench's check: "
                     "other work on the CPU around a block, or a block's invoke p90 over "
                     f"{SPREAD_LIMIT:g}x its p50): {', '.join(busy)}: their latencies are "
                     "contended, not results "
                     "(the JSON's `busy` says which block and which check).")
    slower = more_threads_slower(results)
    if slower and s.get("blocks"):
        lines.append(f"2 threads slower than 1 (beyond 5%): {', '.join(slower)}. In every "
                     "block: the fastest 2-thread block p50 is above the slowest 1-thread one, "
                     "so load that came and went does not explain it. Either too little work "
                     "per op to split (dynamic-range ops outside XNNPACK run single-threaded) "
                     "or other work held a core for the whole measurement: rerun before "
                     "quoting.")
    elif slower:
        lines.append(f"2 threads slower than 1 (beyond 5%): {', '.join(slower)}. Either too "
                     "little work per op to split (dynamic-range ops outside XNNPACK run "
                     "single-threaded) or other work took a core while that row was timed: "
                     "rerun before quoting.")
    above = above_peak(results)
    if above:
        lines.append(f"‡ above 100% of the nominal peak ({', '.join(above)}): the core ran "
                     f"faster than the {peak.get('mhz', 0):.0f} MHz /proc/cpuinfo reports (a "
                     "virtual machine's fixed figure, or boost clocks), so on this machine the "
                     "nominal peak is a floor, not a ceiling: read % peak as relative, not "
                     "absolute.")
    missing = _missing_fallback(results)
    if missing:
        lines.append(f"int8-fallback not built for {', '.join(missing)}: plain int8 was within "
                     f"the {s['max_drop']} point budget, so there was nothing to fall back from.")
    return "\n".join(lines) + "\n"


def more_threads_slower(results: dict, margin: float = 0.05) -> list[str]:
    """Models (``backbone px mode``) slower with more threads than with 1, in every block.

    With the thread counts interleaved in blocks (rows with ``invoke_p50_min_ms`` /
    ``invoke_p50_max_ms``), a row is named only when the spreads do not overlap: its
    lowest block invoke p50 exceeds the highest block p50 at 1 thread by more than
    ``margin`` (a share: timing noise below). A row whose blocks overlap 1 thread's is
    not called slower, whatever its median says: the blocks disagree. Rows of a
    result without blocks (recorded before interleaving) compare the two p50s.
    """
    one = {(r["backbone"], r["size"], r["mode"]): r
           for r in results["rows"] if r["threads"] == 1}
    named = []
    for r in results["rows"]:
        base = one.get((r["backbone"], r["size"], r["mode"]))
        if r["threads"] <= 1 or base is None:
            continue
        low, high = _block_bounds(r)
        base_low, base_high = _block_bounds(base)
        if low <= base_high * (1 + margin):
            continue
        text = (f"{r['backbone']} {r['size']} {r['mode']} ({base['invoke_p50_ms']:.2f} -> "
                f"{r['invoke_p50_ms']:.2f} ms at {r['threads']} threads")
        if "invoke_p50_min_ms" in r:
            text += (f"; block p50s {base_low:.2f}-{base_high:.2f} vs "
                     f"{low:.2f}-{high:.2f} ms")
        named.append(text + ")")
    return named


def _block_bounds(row: dict) -> tuple[float, float]:
    """Lowest and highest block invoke p50 (ms); both the p50 for a row without blocks."""
    return (row.get("invoke_p50_min_ms", row["invoke_p50_ms"]),
            row.get("invoke_p50_max_ms", row["invoke_p50_ms"]))


def _block_range(row: dict) -> str:
    if "invoke_p50_min_ms" not in row:
        return "-"
    return f"{row['invoke_p50_min_ms']:.2f}-{row['invoke_p50_max_ms']:.2f}"


def _timing_text(settings: dict) -> str:
    """How the latencies were timed, for the header (results before blocks: one block)."""
    runs, warmup, blocks = settings["runs"], settings["warmup"], settings.get("blocks")
    if not blocks:
        return f"{runs} timed runs after {warmup},"
    return (f"thread counts interleaved in {blocks} blocks (order alternating: 1,2 then 2,1 "
            f"...), each block {max(1, runs // blocks)} timed runs per thread count after "
            f"{warmup} warm-up in a fresh interpreter; load, invoke p50/p90 and e2e p50 are "
            "medians over the blocks of each block's figure, block p50s = lowest-highest "
            "block invoke p50;")


def above_peak(results: dict) -> list[str]:
    """Rows (``backbone px mode threads``) whose achieved MAC/s exceed the nominal peak.

    The nominal peak (:func:`nominal_peak`) assumes the clock ``/proc/cpuinfo``
    reports; a row above it proves the clock figure wrong for this machine.
    """
    return [f"{r['backbone']} {r['size']} {r['mode']} x{r['threads']}" for r in results["rows"]
            if (share := peak_share(r, results["peak"])) is not None and share > 1]


def _missing_fallback(results: dict) -> list[str]:
    if FALLBACK not in results["settings"]["modes"]:
        return []
    built = {(r["backbone"], r["size"]) for r in results["rows"] if r["mode"] == FALLBACK}
    every = dict.fromkeys((r["backbone"], r["size"]) for r in results["rows"])
    return [f"{b} {s}" for b, s in every if (b, s) not in built]


if __name__ == "__main__":
    main()
