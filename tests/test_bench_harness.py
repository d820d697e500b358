import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgepose.arm.cpus import pi_cpu
from edgepose.bench import machine_slug, run_bench
from edgepose.bench.baseline import compare_with_baseline, parse_tolerance
from edgepose.bench.device import cpu_id, describe_throttled, device_info
from edgepose.cli import main
from edgepose.errors import ConfigError, DataError, RegressionDetected
from edgepose.fileio import write_json
from edgepose.rundir import RunDir

ASSETS = Path(__file__).resolve().parent.parent / ".cache" / "assets"


@pytest.fixture(scope="module")
def split_result(tiny_run):
    return run_bench([tiny_run.fp32, tiny_run.int8], split="test", threads=[1, 2], warmup=1,
                     runs=5)


def test_split_bench_gives_one_row_per_model_and_thread_count(split_result):
    assert [(r.mode, r.threads) for r in split_result.rows] == [
        ("fp32", 1), ("fp32", 2), ("int8", 1), ("int8", 2)]
    for row in split_result.rows:
        assert row.invoke.count == 5 and row.end_to_end.count == 5
        assert row.end_to_end_input == "files"
        assert row.size_bytes > 0 and row.load_ms > 0


def test_split_bench_reports_accuracy_and_drift_against_saved_keras_outputs(tiny_run,
                                                                          split_result):
    int8 = split_result.rows[2]
    assert int8.reference == "keras (reference_outputs.npz)"
    n_test = len(RunDir.open(tiny_run.run).splits.samples("test"))
    assert int8.drift.samples == split_result.settings.samples == n_test
    assert 0.0 <= int8.accuracy <= 1.0
    assert int8.drift.top1_agreement >= 0.8
    assert 0 < int8.drift.max_abs_diff < 0.2
    fp32 = split_result.rows[0]
    assert fp32.drift.max_abs_diff < 1e-4  # float TFLite == Keras


def test_fp32_model_is_the_reference_when_no_outputs_were_saved(tiny_run):
    result = run_bench([tiny_run.int8], split="test", reference="fp32", warmup=0, runs=2)
    assert result.rows[0].reference == "model_fp32.tflite"
    assert result.rows[0].drift.top1_agreement >= 0.8


def test_class_folder_data_gives_accuracy(tiny_run):
    result = run_bench([tiny_run.int8], data=tiny_run.data, max_samples=12, warmup=0, runs=2,
                       reference="none")
    assert result.rows[0].accuracy is not None and result.rows[0].drift is None


def test_third_party_multi_output_model_is_benchmarkable_for_latency():
    model = ASSETS / "pose_landmark_full.tflite"
    if not model.is_file():
        pytest.skip("run `python tests/assets.py` to fetch the MediaPipe model")
    result = run_bench([model], warmup=1, runs=3)
    [row] = result.rows
    assert row.outputs == 5 and row.mode == "?"
    assert row.accuracy is None and row.end_to_end_input == "random arrays"
    assert row.kind == "any model" and len(row.tensors) == 6
    assert row.invoke.min_ms > 0 and "332/332" in row.delegation


def test_device_facts_are_in_every_result(split_result):
    device = split_result.device
    assert device.slug == machine_slug() and device.cores >= 1
    assert device.runtime.startswith("ai_edge_litert") and device.python
    assert device.before is not None and device.after is not None


def test_machine_slug_is_a_stable_folder_name():
    slug = machine_slug()
    assert slug == machine_slug()
    assert slug.replace("-", "").replace("_", "").isalnum() and "--" not in slug


def test_governor_other_than_performance_gives_a_warning():
    info = device_info("x")
    info.governor = "ondemand"
    from edgepose.bench.device import check_conditions

    assert any("not 'performance'" in w for w in check_conditions(info))


def test_throttling_flags_are_decoded():
    assert describe_throttled("0x50005") == ["under-voltage (now)", "currently throttled (now)",
                                             "under-voltage (since boot)",
                                             "currently throttled (since boot)"]


# A /proc/cpuinfo excerpt as Linux prints it on this project's x86 host (first CPU).
ZEN4_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse2 avx fma avx2 avx512f avx512dq avx512_bf16 avx512_vnni
"""


def test_cpu_id_tells_apart_cpus_that_share_a_model_name():
    assert cpu_id(ZEN4_CPUINFO) == \
        "x86 family 25 model 17 stepping 1; avx2 fma avx512f avx512_vnni avx512_bf16"
    # the /proc/cpuinfo the emulated Pis' guests see, as the real boards print it
    assert cpu_id(pi_cpu(4).cpuinfo()) == \
        "arm 0x41 part 0xd08 (Cortex-A72) r0p3; no listed SIMD extensions"
    assert cpu_id(pi_cpu(5).cpuinfo()) == \
        "arm 0x41 part 0xd0b (Cortex-A76) r4p1; asimddp asimdhp"
    assert cpu_id("") is None and cpu_id("processor\t: 0\n") is None
    assert device_info("x").cpu_id == cpu_id()  # recorded with every result


def test_a_slower_run_than_the_baseline_is_a_regression(split_result, tmp_path):
    baseline = tmp_path / "baseline.json"
    write_json(baseline, split_result)
    data = json.loads(baseline.read_text())
    for row in data["rows"]:
        fast = row["invoke"]["p50_ms"] / 3  # 3x faster before, every run alike (no noise)
        row["invoke"].update(p50_ms=fast, p90_ms=fast, min_ms=fast)
        row["invoke_ms"] = [fast] * len(row["invoke_ms"])
    baseline.write_text(json.dumps(data))
    comparison = compare_with_baseline(split_result, baseline, tolerance=0.10)
    assert comparison.regressions
    with pytest.raises(RegressionDetected, match="invoke.p50_ms"):
        comparison.raise_on_regression()


def test_the_same_result_as_the_baseline_is_not_a_regression(split_result, tmp_path):
    baseline = write_json(tmp_path / "baseline.json", split_result)
    comparison = compare_with_baseline(split_result, baseline, tolerance=0.0)
    assert len(comparison.deltas) == 3 * len(split_result.rows)
    assert not comparison.regressions
    comparison.raise_on_regression()


def test_a_baseline_from_another_cpu_under_the_same_name_is_warned_about(split_result,
                                                                          tmp_path):
    baseline = tmp_path / "baseline.json"
    write_json(baseline, split_result)
    data = json.loads(baseline.read_text())
    here = split_result.device.cpu_id
    assert data["device"]["cpu_id"] == here  # the bench JSON records it
    assert not [w for w in compare_with_baseline(split_result, baseline, 0.1).warnings
                if "another CPU" in w]
    data["device"]["cpu_id"] = "x86 family 26 model 2 stepping 0; avx2 fma avx512f"
    baseline.write_text(json.dumps(data))
    warnings = compare_with_baseline(split_result, baseline, 0.1).warnings
    assert f"baseline was recorded on another CPU named like this one (x86 family 26 model 2 " \
           f"stepping 0; avx2 fma avx512f; this is {here}): latencies may not be comparable" \
           in warnings


def test_tolerance_accepts_percent_and_fraction():
    assert parse_tolerance("10%") == pytest.approx(0.1)
    assert parse_tolerance("0.25") == pytest.approx(0.25)
    with pytest.raises(ConfigError):
        parse_tolerance("ten")


def test_data_and_split_together_are_refused(tiny_run):
    with pytest.raises(ConfigError):
        run_bench([tiny_run.int8], data=tiny_run.data, split="test")


def test_split_of_a_model_outside_a_run_directory_is_a_data_error(tiny_run):
    with pytest.raises(DataError, match="not an edgepose run directory"):
        run_bench([tiny_run.uint8], split="test", runs=1)


def test_bench_cli_prints_one_table_and_writes_json_csv_md(tiny_run, tmp_path):
    models = sorted(str(p) for p in tiny_run.run.glob("model_*.tflite"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "bench", *models, "--split", "test", "--threads", "1,2", "--warmup", "1", "--runs", "3",
        "--json", str(out / "b.json"), "--csv", str(out / "b.csv"), "--md", str(out / "b.md")])
    assert result.exit_code == 0, result.output
    for name in ("fp32 t1", "fp32 t2", "int8 t1", "int8 t2"):
        assert name in result.output
    rows = list(csv.DictReader((out / "b.csv").open()))
    assert [r["mode"] for r in rows] == ["fp32", "fp32", "int8", "int8"]
    assert all(r["accuracy"] and r["top-1 agree"] and r["e2e p90 ms"] for r in rows)
    # --warmup 1: the one warm-up call is the first invoke, reported apart; no other warm-up.
    assert all(float(r["first invoke ms"]) > 0 and r["warmup invoke ms"] == "" for r in rows)
    assert json.loads((out / "b.json").read_text())["device"]["slug"] == machine_slug()
    assert "| model_int8.tflite | int8 |" in (out / "b.md").read_text()


def test_bench_cli_exits_3_on_a_regression(tiny_run, split_result, tmp_path):
    baseline = write_json(tmp_path / "baseline.json", split_result)
    data = json.loads(baseline.read_text())
    for row in data["rows"]:  # a baseline whose every run took 1 ns (no spread: no noise)
        row["end_to_end"].update(p50_ms=1e-6, p90_ms=1e-6, min_ms=1e-6)
        row["end_to_end_ms"] = [1e-6] * len(row["end_to_end_ms"])
    baseline.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["bench", str(tiny_run.int8), "--threads", "1",
                                       "--runs", "3", "--warmup", "0",
                                       "--baseline", str(baseline)])
    assert result.exit_code == 3
    assert "regression" in result.output


def test_bench_plot_writes_a_png(tiny_run, tmp_path):
    plot = tmp_path / "latency.png"
    result = CliRunner().invoke(main, ["bench", str(tiny_run.fp32), "--runs", "5",
                                       "--warmup", "0", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_terminal_table_names_the_unit_of_every_latency(split_result):
    from edgepose.bench.bench_report import terminal_table

    columns, rows = terminal_table(split_result)
    assert columns[2:6] == ["first ms", "inv p50 ms", "e2e p50 ms", "e2e p90 ms"]
    p50 = {(r.mode, r.threads): r.invoke.p50_ms for r in split_result.rows}
    assert [float(row[3]) for row in rows] == pytest.approx(
        [round(p50[(r.mode, r.threads)], 3) for r in split_result.rows], abs=1e-3)
