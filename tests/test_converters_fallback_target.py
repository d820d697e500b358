"""``--auto-fallback`` starts from the int8 ``--target`` chose, and is judged where it was.

The fault kind: a later step silently undoing an earlier step's decision. The target
step keeps float the int8 ops XNNPACK refuses (and picks a hard-swish variant); the
fallback used to start again from the plain, rewritten int8, putting the refused op
back (more partitions, slower) without a word. Real conversions of tiny models trained
at test time (:mod:`tests.xnnpack_scale_models`), whose int8 is also made hopeless
(:func:`~tests.xnnpack_scale_models.ruin_int8_head`) so that the fallback runs; real
XNNPACK delegation, real manifests and reports. Host target only (the Pi path shares
the code: :func:`~edgepose.converters.target.measure_rows`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgepose.converters import ConvertOptions, run_conversion
from edgepose.converters.conversion_report import ConversionReport, ModeResult
from edgepose.converters.fallback import (
    execution_order,
    fallback_result_from_dict,
    outside_notes,
)
from edgepose.converters.target import measure_rows
from tests import xnnpack_scale_models as scale

BUDGET = ConvertOptions(max_drop=5.0, auto_fallback=True)


def _ruined(digits_run, tmp_path_factory, name, build) -> Path:
    return scale.ruin_int8_head(scale.made(digits_run, tmp_path_factory, name, build))


@pytest.fixture(scope="module")
def add_run(digits_run, tmp_path_factory):
    """The wide-ADD model with a hopeless int8 head, converted with a 5-point budget."""
    run = _ruined(digits_run, tmp_path_factory, "fallback_add", scale.wide_add)
    return run, run_conversion(run, ["fp32", "int8"], BUDGET)


@pytest.fixture(scope="module")
def hswish_run(digits_run, tmp_path_factory):
    """The wide hard-swish model (both rewrite settings tried), hopeless int8 head."""
    run = _ruined(digits_run, tmp_path_factory, "fallback_hswish",
                  scale.tamed_hard_swish)
    return run, run_conversion(run, ["fp32", "int8"], BUDGET)


def _chosen(report):
    return next(c for c in report.int8_choice.candidates if c.chosen)


def _manifest(run: Path, mode: str) -> dict:
    return json.loads((run / f"model_{mode}.json").read_text())


def test_with_no_candidate_in_budget_the_target_still_keeps_the_wide_add_float(add_run):
    _, report = add_run
    choice, chosen = report.int8_choice, _chosen(report)
    as_converted = choice.candidates[0]
    # int8 answers one class whatever the ADD: every candidate loses the same, over budget
    assert as_converted.drop_pct > 50 and not any(c.within_budget for c in choice.candidates)
    assert chosen.name == "int8, float ADD x1" and chosen.drop_pct <= as_converted.drop_pct
    assert choice.reason.startswith("fastest of those losing no more than the int8 as "
                                    "converted (none is within the budget) on this machine")
    assert report.mode("int8").partitions == 1


def test_the_fallback_keeps_the_targets_float_add_and_runs_in_one_partition(add_run):
    run, report = add_run
    chosen, int8, fallback = _chosen(report), report.mode("int8"), report.mode("int8-fallback")
    assert report.fallback.within_budget and fallback.drop_pct <= 5.0
    assert fallback.partitions == int8.partitions == 1
    assert fallback.ops_outside == int8.ops_outside == {"SOFTMAX": 1}
    # every tensor kept float: the start's, then the strategy's own
    assert fallback.float_layers[:1] == chosen.float_nodes
    assert fallback.float_layers[1:] == report.fallback.float_layers
    settings = _manifest(run, "int8-fallback")["settings"]
    assert settings["fallback_start"] == "int8, float ADD x1"
    assert settings["float_nodes"] == chosen.float_nodes and settings["float_ops"] == {"ADD": 1}
    assert settings["hardswish_rewrite"] is False
    assert report.failed_modes == []


def test_the_fallback_section_names_its_start_and_its_speed_beside_it(add_run):
    run, report = add_run
    text = (run / "conversion_report.md").read_text()
    start = ("the int8 chosen for this machine (int8, float ADD x1; hard-swish rewrite off; "
             "ops kept float: ADD x1)")
    assert f"- started from {start}; every candidate keeps those ops float too" in text
    rows = {m.mode: m for m in report.modes}
    assert (f"- speed on this machine: fp32 {rows['fp32'].latency_ms:.3g} ms, int8 (its "
            f"start) {rows['int8'].latency_ms:.3g} ms, int8-fallback "
            f"{rows['int8-fallback'].latency_ms:.3g} ms") in text
    assert report.fallback.summary() == (
        f"int8-fallback kept {len(report.fallback.float_layers)} layer(s) float on top of "
        f"{start}; within budget: True")


def test_the_cli_says_what_the_fallback_started_from(add_run, tmp_path):
    from click.testing import CliRunner

    from edgepose.cli import main

    run = tmp_path / "run"
    shutil.copytree(add_run[0], run)
    result = CliRunner().invoke(main, ["convert", str(run), "--int8", "--max-drop", "5",
                                       "--auto-fallback"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "int8-fallback kept" in line]
    saved = json.loads((run / "conversion_report.json").read_text())["fallback"]
    assert lines == [fallback_result_from_dict(saved).summary()]
    assert " on top of the int8 chosen for this machine (int8, float ADD x1; hard-swish " \
           "rewrite off; ops kept float: ADD x1); within budget: True" in lines[0]


def test_the_layer_ranking_is_that_of_the_int8_the_fallback_starts_from(add_run):
    _, report = add_run
    ranked = {e.tensor for e in report.layer_errors}
    assert ranked and not ranked & set(_chosen(report).float_nodes)


def test_the_fallback_uses_the_hard_swish_variant_the_target_chose(hswish_run):
    run, report = hswish_run
    chosen, int8, fallback = _chosen(report), report.mode("int8"), report.mode("int8-fallback")
    names = [c.name for c in report.int8_choice.candidates]
    assert names[0] == "int8, hard-swish rewrite" and "int8, no hard-swish rewrite" in names
    settings = _manifest(run, "int8-fallback")["settings"]
    assert settings["hardswish_rewrite"] is chosen.hardswish_rewrite
    assert settings["fallback_start"] == chosen.name
    # not rewritten, the model holds a HARD_SWISH op (kept float or not); rewritten, none
    ops = {op for _, op in execution_order((run / "model_int8-fallback.tflite").read_bytes())}
    assert ("HARD_SWISH" in ops) is (not chosen.hardswish_rewrite)
    assert fallback.ops_outside == int8.ops_outside
    assert fallback.partitions == int8.partitions
    assert fallback.float_layers[:len(chosen.float_nodes)] == chosen.float_nodes
    assert f"- started from the int8 chosen for this machine ({chosen.name}; hard-swish " \
           f"rewrite {'on' if chosen.hardswish_rewrite else 'off'}" in (
               run / "conversion_report.md").read_text()


def test_auto_fallback_keeps_the_start_float_in_every_candidate(add_run, tmp_path):
    """Timing-free: the denylist of every candidate begins with the start's tensors."""
    from edgepose.converters.calibration import from_run
    from edgepose.converters.debugger import layer_errors
    from edgepose.converters.export import export_saved_model, load_keras_model
    from edgepose.converters.fallback import auto_fallback
    from edgepose.converters.modes import MODES
    from edgepose.converters.tflite import calibrate, convert_mode
    from edgepose.rundir import RunDir
    from edgepose.runtime.delegation import inspect_model

    run = RunDir.open(add_run[0])
    saved = export_saved_model(load_keras_model(run.model_path), tmp_path / "saved")
    calibration = from_run(run.splits, run.config, 20, 0)
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(convert_mode(saved, MODES["int8"], calibration))
    refused = [name for op, name in inspect_model(plain).outside_nodes if op == "ADD"]
    assert len(refused) == 1
    assert refused[0] in {e.tensor for e in layer_errors(saved, calibration)}
    ranked = layer_errors(saved, calibration, float_nodes=refused)
    assert refused[0] not in {e.tensor for e in ranked}
    calibrated = calibrate(saved, calibration)
    tried: list[bytes] = []

    def drop(model: bytes) -> float:
        tried.append(model)
        return 10.0 if len(tried) < 2 else 0.0  # the second candidate fits

    result, model = auto_fallback(calibrated, ranked, drop, 5.0, start=refused)
    assert len(result.steps) == 2 and result.within_budget
    for i, data in enumerate([*tried, model]):
        path = tmp_path / f"candidate_{i}.tflite"
        path.write_bytes(data)
        delegation = inspect_model(path)
        assert delegation.partitions == 1 and delegation.ops_outside == {"SOFTMAX": 1}
    _, without = auto_fallback(calibrated, ranked, lambda _: 0.0, 5.0)
    (tmp_path / "without.tflite").write_bytes(without)
    assert inspect_model(tmp_path / "without.tflite").ops_outside == {"ADD": 1, "SOFTMAX": 1}


def test_bench_reads_the_fallback_models_own_manifest(add_run):
    from edgepose.bench.harness import run_bench

    run, report = add_run
    result = run_bench([run / "model_int8-fallback.tflite"], warmup=1, runs=3)
    assert [row.mode for row in result.rows] == ["int8-fallback"]


def test_a_later_conversion_of_other_modes_keeps_the_fallback_and_its_section(add_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(add_run[0], run)
    report = run_conversion(run, ["fp16"], ConvertOptions())
    assert [m.mode for m in report.modes] == ["fp32", "fp16", "int8", "int8-fallback"]
    assert report.fallback.start.name == "int8, float ADD x1"
    assert report.fallback.float_layers == add_run[1].fallback.float_layers
    text = (run / "conversion_report.md").read_text()
    assert "## int8 auto-fallback" in text and "- started from the int8 chosen for this " \
        "machine (int8, float ADD x1;" in text


def test_int8_converted_again_drops_the_fallback_built_on_the_earlier_int8(add_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(add_run[0], run)
    report = run_conversion(run, ["int8"], ConvertOptions())
    assert [m.mode for m in report.modes] == ["fp32", "int8"] and report.fallback is None
    assert [(s.mode, s.reason) for s in report.stale] == [
        ("int8-fallback", "it was built on an earlier int8 conversion and int8 was "
                          "converted again now")]
    assert ("int8-fallback row of the earlier report dropped: it was built on an earlier int8 "
            "conversion and int8 was converted again now; re-convert with --int8 --max-drop N "
            "--auto-fallback to report it") in report.notes


def _row(mode: str, ms: float, outside: dict[str, int] | None = None, partitions: int = 1,
         instructions: int | None = None) -> ModeResult:
    return ModeResult(mode=mode, path=f"model_{mode}.tflite", size_bytes=1, size_ratio=1.0,
                      conversion_seconds=0, input_dtype="int8", output_dtype="int8",
                      latency_ms=ms, partitions=partitions, delegated_nodes=9, total_nodes=10,
                      ops_outside=outside or {"SOFTMAX": 1},
                      instructions_per_invoke=instructions,
                      instructions_target="pi4" if instructions else None)


def _report(rows: list[ModeResult], target: str = "host") -> ConversionReport:
    return ConversionReport(source="model.keras", source_sha256="a" * 64, task="image",
                            test_samples=0, keras_accuracy=None, calibration={},
                            settings={"max_drop": 2.0, "target": target}, modes=rows)


def test_a_fallback_splitting_the_graph_its_start_kept_whole_is_noted():
    rows = [_row("fp32", 0.4), _row("int8", 0.2),
            _row("int8-fallback", 0.3, {"ADD": 2, "SOFTMAX": 1}, partitions=3)]
    assert outside_notes(rows) == [
        "int8-fallback leaves ops outside XNNPACK that the int8 it started from does not "
        "(ADD x2; 3 partitions vs 1): its float layers split the graph"]
    assert outside_notes(rows[:2]) == []
    same = [_row("int8", 0.2, {"ADD": 1, "SOFTMAX": 1}, 2),
            _row("int8-fallback", 0.3, {"ADD": 1, "SOFTMAX": 1}, 2)]
    assert outside_notes(same) == []
    assert outside_notes(rows)[0] in _report(rows).speed_notes()


def test_a_fallback_slower_than_fp32_is_flagged_on_the_host_and_on_a_pi():
    rows = [_row("fp32", 0.40, instructions=10_000_000), _row("int8", 0.20, instructions=6_000_000),
            _row("int8-fallback", 0.50, instructions=12_500_000)]
    assert _report(rows).speed_notes() == [
        "int8-fallback is 1.25x slower than fp32 on this machine (0.5 vs 0.4 ms median invoke, "
        "1 thread, XNNPACK): use int8 here (0.2 ms)"]
    assert _report(rows, "pi4").speed_notes() == [
        "int8-fallback is 1.25x slower than fp32 on Pi 4 (emulated Cortex-A72) (12.50 vs 10.00 "
        "M instructions per invoke, 1 thread, XNNPACK): use int8 there (6.00 M instructions)"]


def test_rows_already_counted_on_the_pi_are_not_counted_again(tmp_path):
    rows = [_row("fp32", 0.4, instructions=10_000_000), _row("int8", 0.2, instructions=6_000_000)]
    for row in rows:
        row.path = str(tmp_path / Path(row.path).name)
        Path(row.path).write_bytes(b"x")
    said: list[str] = []
    measure_rows(_report(rows, "pi4"), "pi4", np.zeros((4, 4, 3), np.float32), said.append)
    assert said == []  # no emulator job: nothing new to count
