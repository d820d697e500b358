"""The conversion report accumulates modes, stamps every row, drops stale rows, and flags
modes slower than fp32 (int16x8 as a reference-kernel mode) with measured ratios."""

from __future__ import annotations

import shutil

import pytest

from edgepose.converters import convert_run
from edgepose.converters.conversion_report import ConversionReport, ModeResult
from edgepose.fileio import read_json, sha256_file, write_json
from edgepose.runtime.drift_stats import DriftStats


@pytest.fixture(scope="module")
def two_conversions(digits_run, tmp_path_factory):  # noqa: F811
    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(digits_run, run)
    first = convert_run(run, ["fp32", "int8"])
    saved_first = read_json(run / "conversion_report.json")
    second = convert_run(run, ["int16x8"])
    return run, first, saved_first, second


def test_a_later_int16x8_conversion_keeps_the_earlier_rows(two_conversions):
    run, _, saved_first, second = two_conversions
    assert [m.mode for m in second.modes] == ["fp32", "int8", "int16x8"]
    on_disk = read_json(run / "conversion_report.json")
    assert [m["mode"] for m in on_disk["modes"]] == ["fp32", "int8", "int16x8"]
    # The earlier rows are the earlier measurements, unchanged (not re-measured, not lost).
    assert on_disk["modes"][:2] == saved_first["modes"]


def test_every_row_is_stamped_with_time_and_source_hash(two_conversions):
    run, _, saved_first, second = two_conversions
    sha = sha256_file(run / "model.keras")
    assert {m.source_sha256 for m in second.modes} == {sha}
    assert second.mode("fp32").made_at == saved_first["modes"][0]["made_at"]
    assert second.mode("int16x8").made_at >= second.mode("fp32").made_at
    markdown = (run / "conversion_report.md").read_text()
    assert f"- int16x8: made {second.mode('int16x8').made_at} from source sha256 {sha[:12]}" \
        in markdown


def test_int16x8_is_labelled_a_reference_kernel_mode_with_its_measured_cost(two_conversions):
    _, _, _, second = two_conversions
    int16, int8, fp32 = second.mode("int16x8"), second.mode("int8"), second.mode("fp32")
    assert int16.delegated_nodes == 0
    expected = (f"int16x8 is a reference-kernel mode: 0/{int16.total_nodes} nodes run in "
                f"XNNPACK; invoke {int16.latency_ms:.3g} ms = "
                f"{int16.latency_ms / fp32.latency_ms:.1f}x fp32, "
                f"{int16.latency_ms / int8.latency_ms:.1f}x int8 on this machine")
    assert expected in second.notes


def _row(mode: str, latency: float, path: str = "m.tflite", sha: str | None = "a" * 64,
         delegated: int = 10, made_at: str | None = "2026-01-01T00:00:00Z",
         drop: float | None = None) -> ModeResult:
    drift = None if drop is None else DriftStats(
        samples=80, accuracy=0.9 - drop / 100, reference_accuracy=0.9,
        accuracy_delta=-drop / 100, top1_agreement=1.0, mean_abs_diff=0.0, max_abs_diff=0.0,
        mean_kl=0.0)
    return ModeResult(mode=mode, path=path, size_bytes=1, size_ratio=1.0, conversion_seconds=0,
                      input_dtype="float32", output_dtype="float32", latency_ms=latency,
                      delegated_nodes=delegated, total_nodes=10, made_at=made_at,
                      source_sha256=sha, drift=drift)


def _report(modes: list[ModeResult], sha: str = "a" * 64, max_drop=None) -> ConversionReport:
    return ConversionReport(source="model.keras", source_sha256=sha, task="image",
                            test_samples=0, keras_accuracy=None, calibration={},
                            settings={"max_drop": max_drop}, modes=modes)


def test_a_mode_slower_than_fp32_is_flagged_with_the_fastest_mode():
    report = _report([_row("fp32", 0.43), _row("dynamic", 0.40), _row("int8", 0.72)])
    assert report.speed_notes() == [
        "int8 is 1.67x slower than fp32 on this machine (0.72 vs 0.43 ms median invoke, "
        "1 thread, XNNPACK): use dynamic here (0.4 ms)"]


def test_the_recommended_mode_loses_no_more_accuracy_than_the_flagged_one():
    rows = [_row("fp32", 0.023, drop=0.0), _row("int8", 0.01, drop=2.5),
            _row("int16x8", 1.08, drop=1.25, delegated=0)]
    assert _report(rows).speed_notes()[0] == (
        "int16x8 is 46.96x slower than fp32 on this machine (1.08 vs 0.023 ms median invoke, "
        "1 thread, XNNPACK): use fp32 here (0.023 ms, drop 0.00 pts)")
    # With a --max-drop budget of 3 points, int8 fits and is the fastest.
    assert _report(rows, max_drop=3.0).speed_notes()[0].endswith(
        "use int8 here (0.01 ms, drop 2.50 pts)")


def test_a_mode_within_timing_noise_of_fp32_is_not_flagged():
    assert _report([_row("fp32", 1.0), _row("int8", 1.04)]).speed_notes() == []


def test_a_partly_delegated_int16x8_is_not_called_reference_kernel():
    report = _report([_row("fp32", 1.0), _row("int16x8", 0.9, delegated=4)])
    assert report.speed_notes() == []


def test_rows_of_another_source_model_are_dropped_as_stale(tmp_path):
    model = tmp_path / "model_int8.tflite"
    model.write_bytes(b"x")
    old = _report([_row("fp32", 1.0, str(model), sha="b" * 64),
                   _row("int8", 0.5, str(model), sha="b" * 64)], sha="b" * 64)
    write_json(tmp_path / "conversion_report.json", old)
    new = _report([_row("fp16", 0.9, str(model), made_at=None)])
    new.merge_previous(tmp_path)
    assert [m.mode for m in new.modes] == ["fp16"]
    assert [(s.mode, s.reason) for s in new.stale] == [
        ("fp32", f"made from source sha256 {'b' * 12}, the model is now {'a' * 12}"),
        ("int8", f"made from source sha256 {'b' * 12}, the model is now {'a' * 12}")]
    assert ("int8 row of the earlier report dropped: made from source sha256 bbbbbbbbbbbb, the "
            "model is now aaaaaaaaaaaa; re-convert with --int8 to report it") in new.speed_notes()


def test_a_row_whose_model_file_is_gone_is_dropped(tmp_path):
    old = _report([_row("int8", 0.5, str(tmp_path / "model_int8.tflite"))])
    write_json(tmp_path / "conversion_report.json", old)
    new = _report([_row("fp32", 1.0, made_at=None)])
    new.merge_previous(tmp_path)
    assert [m.mode for m in new.modes] == ["fp32"]
    assert [(s.mode, s.reason) for s in new.stale] == [("int8", "its model file is gone")]


def test_rows_of_an_unstamped_earlier_report_take_its_source_hash(tmp_path):
    model = tmp_path / "model_int8.tflite"
    model.write_bytes(b"x")
    old = _report([_row("int8", 0.5, str(model), sha=None, made_at=None)])
    write_json(tmp_path / "conversion_report.json", old)
    new = _report([_row("fp32", 1.0, made_at=None)])
    new.merge_previous(tmp_path)
    assert [m.mode for m in new.modes] == ["fp32", "int8"]
    assert new.mode("int8").source_sha256 == "a" * 64 and new.mode("int8").made_at is None


def test_an_unreadable_earlier_report_is_named_not_merged(tmp_path):
    (tmp_path / "conversion_report.json").write_text("{not json")
    new = _report([_row("fp32", 1.0, made_at=None)])
    new.merge_previous(tmp_path)
    assert [m.mode for m in new.modes] == ["fp32"]
    assert new.stale[0].reason.startswith("unreadable report (")
