"""Measurements that cannot flatter: sampling, skipped samples, baselines, busy machines.

Real tiny TFLite models built here (a collapsed classifier that always answers one
class) and the session's tiny run; fake clocks only where a timing value is asserted.
"""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.bench import run_bench
from edgepose.bench.checks import busy_warnings, slower_than_fp32
from edgepose.bench.device import Conditions
from edgepose.bench.stats import latency_stats, time_phases
from edgepose.cli import main
from edgepose.errors import DataError
from edgepose.fileio import write_json
from tests import tflite_models


@pytest.fixture(scope="module")
def collapsed(tiny_run, tmp_path_factory):
    """A real classifier that answers "one" for every image (the first class folder)."""
    return tflite_models.collapsed_classifier(tmp_path_factory.mktemp("collapsed"))


def test_max_samples_is_stratified_so_a_collapsed_model_scores_chance(tiny_run, collapsed):
    # Sorted class folders put the 40 "one" images first: the first 30 files would give 100%.
    result = run_bench([collapsed], data=tiny_run.data, max_samples=30, warmup=0, runs=2,
                       reference="none")
    assert result.rows[0].accuracy == pytest.approx(10 / 30)
    assert result.settings.samples == 30
    assert result.settings.sample == (f"30 of 120 samples (stratified by class, seed 0) from "
                                      f"{tiny_run.data}")


def test_the_whole_set_gives_the_same_chance_accuracy(tiny_run, collapsed):
    result = run_bench([collapsed], data=tiny_run.data, warmup=0, runs=2, reference="none")
    assert result.rows[0].accuracy == pytest.approx(1 / 3)
    assert result.settings.sample == f"all 120 samples from {tiny_run.data}"


def test_a_split_sample_names_the_split_in_the_report(tiny_run, tmp_path):
    result = CliRunner().invoke(main, ["bench", str(tiny_run.int8), "--split", "test",
                                       "--max-samples", "6", "--runs", "2", "--warmup", "0",
                                       "--md", str(tmp_path / "b.md")])
    assert result.exit_code == 0, result.output
    expected = (f"accuracy on 6 of 18 samples (stratified by class, seed 0) from "
                f"{tiny_run.run / 'splits.json'}:test")
    assert expected in " ".join(result.output.split())
    assert expected in (tmp_path / "b.md").read_text()


@pytest.fixture
def data_with_broken_images(tiny_run, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_run.data, data)
    (data / "one" / "zz_empty.png").write_bytes(b"")
    (data / "two" / "zz_text.jpg").write_text("not a jpeg")
    cut = (data / "zero" / "000.png").read_bytes()
    (data / "zero" / "zz_cut.png").write_bytes(cut[:len(cut) // 2])
    return data


def test_bench_skips_unreadable_images_and_scores_the_rest(tiny_run, data_with_broken_images):
    clean = run_bench([tiny_run.int8], data=tiny_run.data, warmup=0, runs=2, reference="none")
    result = run_bench([tiny_run.int8], data=data_with_broken_images, warmup=0, runs=2,
                       reference="none")
    assert result.rows[0].accuracy == clean.rows[0].accuracy
    # the copy holds the run's 102 train/val images too: left out (tests/test_bench_heldout.py)
    assert result.settings.samples == clean.settings.samples == 18
    data = data_with_broken_images
    assert [(s.file, s.reason.split(" (")[0]) for s in result.skipped] == [
        (str(data / "one" / "zz_empty.png"), "empty file"),
        (str(data / "two" / "zz_text.jpg"), "not a readable image"),
        (str(data / "zero" / "zz_cut.png"), "not a readable image")]
    assert "3 sample(s) could not be read and were left out (listed under skipped)" \
        in result.warnings


def test_bench_skips_unreadable_keypoint_files_and_scores_the_rest(tiny_run, tmp_path):
    rng = np.random.default_rng(0)
    clean, broken = tmp_path / "clean", tmp_path / "broken"
    for name in tiny_run.labels:
        for root in (clean, broken):
            (root / name).mkdir(parents=True)
        for i in range(4):
            text = json.dumps({"keypoints": rng.uniform(0, 1, 34).round(4).tolist()})
            (clean / name / f"{i}.json").write_text(text)
            (broken / name / f"{i}.json").write_text(text)
    (broken / "one" / "x_bad.json").write_text("{not json")
    (broken / "two" / "x_short.json").write_text(json.dumps({"keypoints": [0.1, 0.2]}))
    (broken / "zero" / "x_null.json").write_text(json.dumps({"keypoints": [None] * 34}))
    expected = run_bench([tiny_run.keypoints], data=clean, warmup=0, runs=2, reference="none")
    result = run_bench([tiny_run.keypoints], data=broken, warmup=0, runs=2, reference="none")
    assert result.rows[0].accuracy == expected.rows[0].accuracy
    assert [(s.file, s.reason) for s in result.skipped] == [
        (str(broken / "one" / "x_bad.json"), "not valid JSON (Expecting property name enclosed "
                                             "in double quotes: line 1 column 2 (char 1))"),
        (str(broken / "two" / "x_short.json"), "'keypoints' has 2 numbers, layout coco17 needs "
                                               "34 (17 joints x 2)"),
        (str(broken / "zero" / "x_null.json"),
         "no person: 34 of 34 keypoint numbers are NaN or null")]


def test_bench_strict_fails_on_an_unreadable_image(tiny_run, data_with_broken_images):
    result = CliRunner().invoke(main, ["bench", str(tiny_run.int8), "--data",
                                       str(data_with_broken_images), "--runs", "2",
                                       "--warmup", "0", "--strict"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert f"skipped {data_with_broken_images / 'one' / 'zz_empty.png'}: empty file" in text
    assert (f"{data_with_broken_images}: 3 sample(s) could not be read (--strict)"
            in text)


def test_bench_fails_when_no_sample_can_be_read(tiny_run, tmp_path):
    data = tmp_path / "bad"
    for name in tiny_run.labels:
        (data / name).mkdir(parents=True)
        (data / name / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"none of the 3 samples could be read \(first: .*"
                                        r"x.png: empty file\)"):
        run_bench([tiny_run.fp32], data=data, runs=1, warmup=0)


@pytest.fixture(scope="module")
def fp32_result(tiny_run):
    return run_bench([tiny_run.fp32, tiny_run.int8], threads=[1], warmup=2, runs=5)


def test_a_row_without_baseline_fails_by_default(tiny_run, tmp_path, fp32_result):
    only_fp32 = fp32_result.__class__(fp32_result.device, fp32_result.settings,
                                      fp32_result.rows[:1])
    baseline = write_json(tmp_path / "base.json", only_fp32)
    args = ["bench", str(tiny_run.int8), "--threads", "1", "--runs", "2", "--warmup", "0",
            "--baseline", str(baseline)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert (f"{baseline}: no baseline row for model_int8.tflite t=1 xnnpack (the baseline "
            "has: model_fp32.tflite t=1 xnnpack); record one with --json, or pass "
            "--allow-missing-baseline") in " ".join(result.output.split())
    allowed = CliRunner().invoke(main, [*args, "--allow-missing-baseline"])
    assert allowed.exit_code == 0, allowed.output
    assert "no baseline row for model_int8.tflite t=1 xnnpack" in allowed.output


@pytest.mark.parametrize("change, expected", [
    ({"threads": 2}, "model_fp32.tflite t=1 xnnpack"),  # recorded at 2 threads only
    ({"xnnpack": False}, "model_fp32.tflite t=1 xnnpack"),  # recorded without XNNPACK only
    ({"model": "/elsewhere/model_fp16.tflite"}, "model_fp32.tflite t=1 xnnpack"),
])
def test_every_kind_of_missing_baseline_row_is_named(fp32_result, tmp_path, change, expected):
    from edgepose.bench.baseline import compare_with_baseline

    data = json.loads(write_json(tmp_path / "b.json", fp32_result).read_text())
    data["rows"] = [dict(data["rows"][0], **change)]
    (tmp_path / "b.json").write_text(json.dumps(data))
    comparison = compare_with_baseline(fp32_result, tmp_path / "b.json", tolerance=0.1)
    assert comparison.unmatched[0] == expected
    with pytest.raises(DataError, match=f"no baseline row for {expected}"):
        comparison.raise_on_regression()
    comparison.raise_on_regression(allow_unmatched=True)  # allowed: no error


def test_first_inference_and_warmup_are_reported_apart(fp32_result, tmp_path):
    row = fp32_result.rows[0]
    assert row.first_invoke_ms > 0 and row.warmup_invoke_ms > 0  # warmup 2 = first + 1 more
    assert row.invoke.count == 5
    data = json.loads(write_json(tmp_path / "b.json", fp32_result).read_text())
    assert data["rows"][0]["first_invoke_ms"] == pytest.approx(row.first_invoke_ms)


def test_time_phases_splits_first_warmup_and_steady_state():
    durations = iter([900, 50, 40, 10, 11, 12])
    now = [0]

    def clock():  # each call pair (start, end) spans the next duration
        now[0] += next(durations) if clock.calls % 2 else 0
        clock.calls += 1
        return now[0]

    clock.calls = 0
    phases = time_phases(lambda i: None, runs=3, warmup=3, clock=clock)
    assert (phases.first, phases.warmup, phases.runs) == (900, [50, 40], [10, 11, 12])


def _with_load(result, start, end):
    device = result.device
    device.before = Conditions(None, None, [], start)
    device.after = Conditions(None, None, [], end)
    device.cores = 2
    return device


def test_a_busy_machine_is_named_in_the_warnings(fp32_result):
    device = _with_load(fp32_result, 1.5, 2.0)
    assert busy_warnings(device, fp32_result.rows[:1])[0] == (
        "machine busy: load average 1.5 at start, 2.0 at end on 2 cores (this run used up to 1 "
        "thread(s)); latencies are contended, re-run on a quiet machine before recording them")
    # The run's own thread is not counted against it: 1.9 at the end is this run plus 0.9.
    quiet = _with_load(fp32_result, 0.2, 1.9)
    assert not [w for w in busy_warnings(quiet, fp32_result.rows[:1]) if "load average" in w]


def test_the_result_records_whether_the_machine_was_busy(fp32_result):
    busy = [w for w in fp32_result.warnings if w.startswith("machine busy")]
    assert fp32_result.machine_busy == bool(busy)


def test_a_wide_spread_of_timings_is_a_busy_warning(fp32_result):
    row = fp32_result.rows[0]
    saved = row.invoke
    row.invoke = latency_stats([1_000_000] * 6 + [4_000_000] * 4)  # p50 1 ms, p90 4 ms
    try:
        [warning] = busy_warnings(_with_load(fp32_result, 0.0, 1.0), [row])
    finally:
        row.invoke = saved
    assert warning.startswith("machine busy? model_fp32.tflite t=1 xnnpack: invoke p90 4 ms is "
                              "4.0x the median 1 ms")


def test_a_converted_model_slower_than_fp32_is_flagged_with_the_faster_mode(fp32_result):
    fp32, int8 = fp32_result.rows
    saved = fp32.invoke, int8.invoke
    fp32.invoke, int8.invoke = latency_stats([1_000_000] * 5), latency_stats([2_500_000] * 5)
    try:
        assert slower_than_fp32([fp32, int8]) == [
            "model_int8.tflite t=1 xnnpack (int8) is 2.50x slower than model_fp32.tflite on this "
            "machine (invoke p50 2.5 vs 1 ms): use fp32 (model_fp32.tflite) here"]
        int8.invoke = latency_stats([900_000] * 5)
        assert slower_than_fp32([fp32, int8]) == []
    finally:
        fp32.invoke, int8.invoke = saved


def test_the_emulated_bench_takes_the_same_stratified_sample(tiny_run):
    from edgepose.arm.emulated import labelled_inputs

    inputs, labels, described = labelled_inputs(tiny_run.fp32, data=tiny_run.data,
                                                max_samples=12)
    assert inputs.shape == (12, 32, 32, 3) and inputs.dtype == np.uint8
    assert np.bincount(labels).tolist() == [4, 4, 4]  # every class in proportion
    # the run's train/val images are left out first (tests/test_arm_heldout.py)
    assert described.startswith(f"12 of 18 samples (stratified by class, seed 0) from "
                                f"{tiny_run.data}; model_fp32.tflite: 102 of 120 samples ")
    _, split_labels, split_described = labelled_inputs(tiny_run.fp32, split="test",
                                                       max_samples=7)
    assert len(split_labels) == 7 and set(split_labels.tolist()) == {0, 1, 2}
    assert split_described.startswith("7 of 18 samples (stratified by class, seed 0) from ")


def _with_cpu(result, start, end, load=(1.5, 1.5)):
    device = _with_load(result, *load)
    device.before.cpu_busy, device.after.cpu_busy = start, end
    return device


def test_other_work_on_the_cpu_is_named_in_the_warnings(fp32_result):
    device = _with_cpu(fp32_result, 1.3, 0.1)
    assert busy_warnings(device, fp32_result.rows[:1])[0] == (
        "machine busy: other work used 1.3 of 2 cores just before the run and 0.1 just after; "
        "latencies are contended, re-run on a quiet machine before recording them")


def test_a_load_average_left_over_from_this_programs_own_training_is_not_busy(fp32_result):
    # The demo benches right after training: the 1-minute load average still says 1.5,
    # but nothing else used the CPU in the windows around the run.
    device = _with_cpu(fp32_result, 0.04, 0.02, load=(1.5, 1.6))
    assert not [w for w in busy_warnings(device, fp32_result.rows[:1])
                if w.startswith("machine busy:")]


def test_cpu_busy_sees_a_process_spinning_on_one_core():
    import subprocess
    import sys

    from edgepose.bench.device import cpu_busy

    if cpu_busy(0.05) is None:
        pytest.skip("no /proc/stat on this system")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)  # let it start
        busy = cpu_busy(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy is not None and busy >= 0.7
