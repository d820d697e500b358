"""An int8 row over the drift budget is said in one line with the way out, not only shown."""

from __future__ import annotations

from edgepose.converters.conversion_report import ConversionReport, ModeResult
from edgepose.converters.drift_note import DRIFT_BUDGET, drop_notes
from edgepose.runtime.drift_stats import DriftStats
from tests.run_fixtures import ruined_int8_copy

WHERE = "all 269 samples of the test split of digits64"


def _row(mode: str, keras: float, acc: float, agree: float) -> ModeResult:
    drift = DriftStats(samples=269, accuracy=acc, reference_accuracy=keras,
                       accuracy_delta=acc - keras, top1_agreement=agree, mean_abs_diff=0.06,
                       max_abs_diff=0.85, mean_kl=0.5)
    return ModeResult(mode=mode, path=f"model_{mode}.tflite", size_bytes=1, size_ratio=0.3,
                      conversion_seconds=1.0, input_dtype="int8", output_dtype="int8",
                      drift=drift)


def _report(*rows: ModeResult) -> ConversionReport:
    return ConversionReport(source="model.keras", source_sha256="0" * 64, task="image",
                            test_samples=269, keras_accuracy=0.8922, calibration={},
                            settings={}, modes=list(rows), drift_data=WHERE)


def test_int8_over_the_budget_is_said_with_its_loss_agreement_and_the_way_out():
    # the MobileNetV2-224 pretrained cell of the int8 matrix: 89.22% -> 57.99%
    report = _report(_row("fp32", 0.8922, 0.8922, 1.0), _row("int8", 0.8922, 0.5799, 0.6506))
    assert drop_notes(report, None) == [
        f"int8 lost 31.23 accuracy points vs Keras on {WHERE} (top-1 agreement 65.1%), over "
        "the 2-point drift budget; --max-drop 2 --auto-fallback keeps the ops where its error "
        "starts in float"]


def test_within_the_budget_or_not_calibrated_says_nothing():
    report = _report(_row("int8", 0.90, 0.90 - DRIFT_BUDGET / 100, 0.97),  # exactly 2.0
                     _row("fp16", 0.90, 0.50, 0.6),  # a float mode: not int8's loss
                     _row("dynamic", 0.90, 0.80, 0.9))
    assert drop_notes(report, None) == []


def test_int16x8_over_the_budget_is_said_too():
    notes = drop_notes(_report(_row("int16x8", 0.80, 0.75, 0.9)), None)
    assert len(notes) == 1 and notes[0].startswith("int16x8 lost 5.00 accuracy points")


def test_with_max_drop_the_budget_check_speaks_instead():
    report = _report(_row("int8", 0.8922, 0.5799, 0.6506))
    assert drop_notes(report, 5.0) == []
    assert drop_notes(report, None, budget=40.0) == []  # a looser budget stated here


def _ruined_int8_run(digits_run, folder):
    """The digits model, hopeless in int8 (:func:`tests.run_fixtures.ruined_int8_copy`)."""
    return ruined_int8_copy(digits_run, folder / "run")


def test_convert_warns_in_one_line_when_int8_loses_more_than_the_budget(digits_run, tmp_path):
    import json

    from click.testing import CliRunner

    from edgepose.cli import main

    run = _ruined_int8_run(digits_run, tmp_path)
    result = CliRunner().invoke(main, ["convert", str(run), "--int8"])
    assert result.exit_code == 0, result.output  # no --max-drop: reported, not refused
    report = json.loads((run / "conversion_report.json").read_text())
    int8 = next(m for m in report["modes"] if m["mode"] == "int8")
    drop = -100.0 * int8["drift"]["accuracy_delta"]
    assert drop > 20.0
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning: int8")]
    assert warnings == [
        f"warning: int8 lost {drop:.2f} accuracy points vs Keras on {report['drift_data']} "
        f"(top-1 agreement {100 * int8['drift']['top1_agreement']:.1f}%), over the 2-point "
        "drift budget; --max-drop 2 --auto-fallback keeps the ops where its error starts in "
        "float"]
    stated = CliRunner().invoke(main, ["convert", str(run), "--int8", "--max-drop", "100"])
    assert stated.exit_code == 0, stated.output
    assert "warning: int8 lost" not in stated.stdout
