"""benchmarks/latency_matrix.py: thread counts timed interleaved in blocks, medians and spread.

The timing runs the real ``run_bench`` on the tiny TFLite models of ``tiny_run``; a
recording wrapper observes each block (its thread order, its rows) and replaces the
machine's own busy warnings with known ones, so the union can be asserted exactly.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from latency_matrix import (  # noqa: E402
    block_orders,
    concerning,
    measure,
    more_threads_slower,
    parse_args,
    settings_of,
    time_model,
    to_markdown,
)

from edgepose.bench import run_bench  # noqa: E402
from edgepose.bench.macs import count_macs  # noqa: E402
from edgepose.rundir import RunDir  # noqa: E402

RUNS, BLOCKS = 9, 3  # 3 timed runs per thread count per block


class Recorder:
    """``run_bench`` that remembers every call and its result; block 2 is made 'busy'."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.results: list = []

    def __call__(self, models, **options):
        result = run_bench(models, **options)
        block = len(self.calls) + 1
        # the shared test machine may or may not be busy: known warnings instead
        result.warnings = ["CPU governor unknown (not a busy warning)"]
        if block == 2:
            result.warnings += ["machine busy: injected in block 2",
                                "machine busy? model_fp32.tflite t=2 xnnpack: injected spread "
                                "in block 2"]
        self.calls.append(options)
        self.results.append(result)
        return result


@pytest.fixture(scope="module")
def timed(tiny_run):
    recorder = Recorder()
    rows = time_model(tiny_run.fp32, [1, 2], RUNS, 1, BLOCKS, bench=recorder)
    return recorder, rows


def test_block_order_alternates_every_round():
    assert block_orders([1, 2], 4) == [[1, 2], [2, 1], [1, 2], [2, 1]]
    assert block_orders([1, 2, 4], 3) == [[1, 2, 4], [4, 2, 1], [1, 2, 4]]
    assert block_orders([2, 1], 1) == [[2, 1]]


def test_each_block_times_every_thread_count_in_the_alternating_order(timed):
    recorder, _ = timed
    assert [call["threads"] for call in recorder.calls] == [[1, 2], [2, 1], [1, 2]]
    assert [[row.threads for row in r.rows] for r in recorder.results] == \
        [[1, 2], [2, 1], [1, 2]]
    for result in recorder.results:
        for row in result.rows:
            assert row.invoke.count == RUNS // BLOCKS == row.end_to_end.count
            assert row.end_to_end_input == "files"  # decode timed in every block


def test_only_the_first_block_scores_the_whole_split_against_keras(timed, tiny_run):
    recorder, rows = timed
    first, *others = recorder.calls
    assert first["reference"] == "keras" and "max_samples" not in first
    assert [(c["reference"], c["max_samples"]) for c in others] == [("none", 3), ("none", 3)]
    n_test = len(RunDir.open(tiny_run.run).splits.samples("test"))
    scored = recorder.results[0].rows[0]
    assert scored.reference == "keras (reference_outputs.npz)"
    for row in rows:
        assert row["samples"] == n_test
        assert row["accuracy"] == scored.accuracy
        assert row["top1_agreement"] == scored.drift.top1_agreement
        assert row["mean_kl"] == scored.drift.mean_kl


def test_row_reports_the_median_of_the_block_p50s_and_their_spread(timed):
    recorder, rows = timed
    assert [r["threads"] for r in rows] == [1, 2]
    for row in rows:
        blocks = [b for result in recorder.results for b in result.rows
                  if b.threads == row["threads"]]
        p50s = [b.invoke.p50_ms for b in blocks]
        assert row["invoke_p50_blocks_ms"] == p50s
        assert row["invoke_p50_ms"] == pytest.approx(statistics.median(p50s), rel=1e-12)
        assert row["invoke_p90_ms"] == pytest.approx(
            statistics.median(b.invoke.p90_ms for b in blocks), rel=1e-12)
        assert row["e2e_p50_ms"] == pytest.approx(
            statistics.median(b.end_to_end.p50_ms for b in blocks), rel=1e-12)
        assert row["load_ms"] == pytest.approx(statistics.median(b.load_ms for b in blocks),
                                               rel=1e-12)
        assert (row["invoke_p50_min_ms"], row["invoke_p50_max_ms"]) == (min(p50s), max(p50s))
        assert row["invoke_p50_min_ms"] <= row["invoke_p50_ms"] <= row["invoke_p50_max_ms"]
        assert (row["blocks"], row["runs_per_block"]) == (BLOCKS, RUNS // BLOCKS)


def test_busy_warnings_are_kept_with_their_block_and_only_for_the_row_they_name(timed):
    _, (one, two) = timed
    # machine-wide: every thread count of the block; a spread: only the row it names
    assert one["busy"] == ["block 2/3: machine busy: injected in block 2"]
    assert two["busy"] == ["block 2/3: machine busy: injected in block 2",
                           "block 2/3: machine busy? model_fp32.tflite t=2 xnnpack: injected "
                           "spread in block 2"]


def test_a_spread_warning_concerns_only_the_thread_count_it_names():
    warnings = ["machine busy: load average 2.1 at start",
                "machine busy? model_int8.tflite t=2 xnnpack: invoke p90 3 ms is 4x",
                "machine busy? model_int8.tflite t=12 xnnpack: invoke p90 3 ms is 4x"]
    assert concerning(warnings, 1) == warnings[:1]
    assert concerning(warnings, 2) == warnings[:2]
    assert concerning(warnings, 12) == [warnings[0], warnings[2]]


def test_measure_keeps_every_field_the_table_and_the_readers_use(tiny_run, tmp_path):
    report = {"keras_accuracy": 0.9, "modes": [
        {"mode": "fp32", "path": str(tiny_run.fp32), "conversion_seconds": 1.5,
         "float_layers": []},
        {"mode": "int8", "path": str(tiny_run.int8), "conversion_seconds": 2.5,
         "float_layers": ["softmax"]}]}
    (tmp_path / "conversion_report.json").write_text(json.dumps(report))
    rows = measure(tmp_path, [1, 2], runs=4, warmup=1, blocks=2)
    assert [(r["mode"], r["threads"]) for r in rows] == [
        ("fp32", 1), ("fp32", 2), ("int8", 1), ("int8", 2)]
    macs = count_macs(tiny_run.int8).total
    int8 = rows[3]
    assert int8["macs"] == macs
    assert int8["macs_per_s"] == pytest.approx(macs / (int8["invoke_p50_ms"] / 1e3))
    assert (int8["float_layers"], int8["convert_seconds"], int8["keras_accuracy"]) == \
        (1, 2.5, 0.9)
    for row in rows:
        for field in ("size_bytes", "load_ms", "invoke_p50_ms", "invoke_p90_ms", "e2e_p50_ms",
                      "e2e_p90_ms", "accuracy", "drop_pts", "top1_agreement", "delegation",
                      "peak_rss_mb", "samples", "busy"):
            assert field in row, field
        assert len(row["invoke_p50_blocks_ms"]) == 2
    for row in rows:
        row.update(backbone="tiny", size=32)
    text = to_markdown(_results(rows, blocks=2, runs=4, warmup=1))
    assert "thread counts interleaved in 2 blocks (order alternating: 1,2 then 2,1 ...), " \
           "each block 2 timed runs per thread count after 1 warm-up" in text
    fp32 = rows[0]
    assert (f"| {fp32['invoke_p50_ms']:.2f} | {fp32['invoke_p50_min_ms']:.2f}-"
            f"{fp32['invoke_p50_max_ms']:.2f} | {fp32['invoke_p90_ms']:.2f} |") in text


def _row(mode: str, threads: int, p50s: list[float]) -> dict:
    return {"backbone": "mobilenet_v3_small", "size": 224, "mode": mode, "threads": threads,
            "invoke_p50_ms": statistics.median(p50s), "invoke_p50_min_ms": min(p50s),
            "invoke_p50_max_ms": max(p50s), "invoke_p50_blocks_ms": p50s,
            "size_bytes": 2048, "convert_seconds": 1.0, "load_ms": 1.0, "invoke_p90_ms": 1.5,
            "e2e_p50_ms": 1.5, "macs": 60e6, "macs_per_s": 60e9, "accuracy": 0.9,
            "drop_pts": 0.0, "top1_agreement": 1.0, "keras_accuracy": 0.9}


def _results(rows: list[dict], blocks: int = 4, runs: int = 100, warmup: int = 10) -> dict:
    return {"machine": "x86_64-test", "rows": rows,
            "peak": {"fp32_macs_per_s": 83e9, "int8_macs_per_s": 332e9, "mhz": 2596.0,
                     "note": "test peak"},
            "device": {"cpu_model": "cpu", "cores": 2, "governor": None, "python": "3.11",
                       "runtime": None},
            "settings": {"per_class": 100, "training": "full", "runs": runs, "warmup": warmup,
                         "blocks": blocks, "modes": "fp32,int8", "max_drop": 1.0}}


def test_more_threads_slower_names_a_row_only_when_the_block_spreads_do_not_overlap():
    rows = [
        # apart: fastest 2-thread block 0.90 > slowest 1-thread block 0.84 x 1.05 = 0.882
        _row("fp32", 1, [0.80, 0.81, 0.84]), _row("fp32", 2, [0.90, 0.92, 0.95]),
        # the recorded case: medians 0.81 -> 0.90, but one 1-thread block was slow too
        _row("fp16", 1, [0.79, 0.81, 0.95]), _row("fp16", 2, [0.86, 0.90, 0.93]),
        # apart, but by less than the margin: 0.87 < 0.882
        _row("int8", 1, [0.80, 0.82, 0.84]), _row("int8", 2, [0.87, 0.90, 0.91]),
        # faster with 2 threads
        _row("dynamic", 1, [1.00, 1.01, 1.02]), _row("dynamic", 2, [0.60, 0.61, 0.62]),
    ]
    results = _results(rows)
    assert more_threads_slower(results) == [
        "mobilenet_v3_small 224 fp32 (0.81 -> 0.92 ms at 2 threads; block p50s 0.80-0.84 vs "
        "0.90-0.95 ms)"]
    text = to_markdown(results)
    assert "2 threads slower than 1 (beyond 5%): mobilenet_v3_small 224 fp32 (0.81 -> 0.92 ms " \
           "at 2 threads; block p50s 0.80-0.84 vs 0.90-0.95 ms). In every block: the fastest " \
           "2-thread block p50 is above the slowest 1-thread one" in text
    assert "fp16 (0.81" not in text


def test_overlapping_spreads_are_not_called_slower_whatever_the_medians_say():
    results = _results([_row("fp32", 1, [0.70, 0.81, 1.00]), _row("fp32", 2, [0.95, 1.20])])
    assert more_threads_slower(results) == []
    assert "slower than 1" not in to_markdown(results)


def test_settings_carry_the_blocks():
    assert settings_of(parse_args([]))["blocks"] == 4
    quick = settings_of(parse_args(["--quick", "--blocks", "2"]))
    assert (quick["blocks"], quick["runs"]) == (2, 20)
    assert "cache" not in quick and "measure" not in quick
    with pytest.raises(SystemExit, match="^--blocks must be at least 1, not 0$"):
        parse_args(["--blocks", "0"])


def test_the_header_names_the_cpu_id_when_recorded():
    results = _results([_row("fp32", 1, [0.80, 0.81, 0.84])])
    assert to_markdown(results).splitlines()[2].startswith("cpu, 2 cores, governor unknown;")
    results["device"]["cpu_id"] = "x86 family 25 model 17 stepping 1; avx2 avx512f"
    assert to_markdown(results).splitlines()[2].startswith(
        "cpu (x86 family 25 model 17 stepping 1; avx2 avx512f), 2 cores, governor unknown;")
