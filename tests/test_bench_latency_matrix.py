"""benchmarks/latency_matrix.py: % of the nominal peak, and rows that prove the clock wrong."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from latency_matrix import above_peak, peak_share, to_markdown  # noqa: E402

PEAK = {"fp32_macs_per_s": 83e9, "int8_macs_per_s": 332e9, "mhz": 2596.0,
        "note": "2596 MHz x 2 FMA x 16 fp32 lanes (AVX-512); int8 4x with avx512_vnni"}


def _row(mode: str, threads: int, gmacs: float) -> dict:
    return {"backbone": "mobilenet_v2", "size": 224, "mode": mode, "threads": threads,
            "size_bytes": 2048, "convert_seconds": 1.0, "load_ms": 1.0, "invoke_p50_ms": 1.0,
            "invoke_p90_ms": 1.1, "e2e_p50_ms": 1.5, "macs": 300e6, "macs_per_s": gmacs * 1e9,
            "accuracy": 0.9, "drop_pts": 0.0, "top1_agreement": 1.0, "keras_accuracy": 0.9}


def _results(rows: list[dict]) -> dict:
    return {"machine": "x86_64-test", "peak": PEAK, "rows": rows,
            "device": {"cpu_model": "cpu", "cores": 2, "governor": None, "python": "3.11",
                       "runtime": None},
            "settings": {"per_class": 100, "training": "full", "runs": 100, "warmup": 10,
                         "modes": ["fp32", "int8"], "max_drop": 2.0}}


def test_peak_share_uses_the_mode_type_and_the_threads():
    assert peak_share(_row("fp32", 1, 41.5), PEAK) == 0.5
    assert peak_share(_row("int8", 2, 332.0), PEAK) == 0.5  # int8 peak x 2 threads
    assert peak_share(_row("fp32", 1, 41.5), {"note": "no clock"}) is None


def test_rows_above_the_nominal_peak_are_marked_and_explained():
    results = _results([_row("fp32", 1, 93.6), _row("fp32", 2, 130.3), _row("int8", 1, 204.6)])
    assert above_peak(results) == ["mobilenet_v2 224 fp32 x1"]
    text = to_markdown(results)
    assert "| 112.8 ‡ |" in text  # 93.6 / 83
    assert "| 78.5 |" in text  # 130.3 / 166: below the peak, no mark
    assert "‡ above 100% of the nominal peak (mobilenet_v2 224 fp32 x1)" in text
    assert "2596 MHz" in text


def test_no_mark_when_every_row_is_below_the_peak():
    text = to_markdown(_results([_row("fp32", 1, 41.5)]))
    assert "‡" not in text


def test_more_threads_slower_and_busy_rows_are_named():
    slow = _row("fp32", 2, 41.5)
    slow["invoke_p50_ms"] = 1.2  # vs 1.0 at one thread
    same = _row("int8", 2, 200.0)
    same["invoke_p50_ms"] = 1.04  # within 5 %
    busy = _row("int8", 1, 200.0)
    busy["busy"] = ["machine busy: load average 3.0 at start"]
    results = _results([_row("fp32", 1, 41.5), slow, busy, same])
    text = to_markdown(results)
    assert "2 threads slower than 1 (beyond 5%): mobilenet_v2 224 fp32 (1.00 -> 1.20 ms at 2 " \
           "threads)." in text
    assert "Machine busy while these models were timed (edgepose bench's check: other " \
           "work on the CPU around a block, or a block's invoke p90 over 1.5x its p50): " \
           "mobilenet_v2 224 int8 1 thr: their latencies are contended" in text


# /proc/cpuinfo excerpts as Linux prints them (first CPU): this project's Zen 4 host, and a
# Sapphire Rapids Xeon (two 512-bit FMA pipes per core).
ZEN4 = """vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
cpu MHz\t\t: 2596.140
flags\t\t: fpu sse2 avx fma avx2 avx512f avx512dq avx512_bf16 avx512_vnni
"""
SAPPHIRE_RAPIDS = """vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8488C
cpu MHz\t\t: 2400.000
flags\t\t: fpu sse2 avx fma avx2 avx512f avx512dq avx512_vnni amx_int8
"""


def test_the_nominal_peak_counts_avx512_at_the_width_of_the_pipes_that_run_it():
    """Zen 4 runs AVX-512 on two 256-bit pipes: 16 fp32 MACs per cycle, not 32 (the
    recorded Zen 4 table read about half its real share before)."""
    from latency_matrix import nominal_peak

    zen4 = nominal_peak(ZEN4)
    assert zen4["lanes"] == 8 and zen4["isa"] == "AVX-512 on 256-bit pipes"
    assert zen4["fp32_macs_per_s"] == 2596.14e6 * 2 * 8
    assert zen4["int8_macs_per_s"] == 4 * zen4["fp32_macs_per_s"]  # VNNI
    xeon = nominal_peak(SAPPHIRE_RAPIDS)
    assert xeon["lanes"] == 16 and xeon["fp32_macs_per_s"] == 2400e6 * 2 * 16
    assert nominal_peak(ZEN4.replace("avx512f ", "").replace("avx512dq ", "")
                        .replace("avx512_bf16 ", "").replace("avx512_vnni", ""))["lanes"] == 8
    assert nominal_peak("")["fp32_macs_per_s"] is None  # no clock: no peak
