"""``edgepose convert --target``: speed judged on the target, and the int8 fastest there.

Real conversions of tiny models trained at test time; real XNNPACK delegation.
The fault kind: an int8 op the XNNPACK delegate refuses because of its
quantization scales (a quantized ADD whose input-to-output scale ratio is
outside [1/1024, 256)), which splits the graph and makes int8 slow.
"""

from __future__ import annotations

import json
import shutil

import pytest

from edgepose.converters import ConvertOptions, run_conversion
from edgepose.converters.conversion_report import ConversionReport, ModeResult, format_points
from edgepose.converters.target import needs_candidates
from edgepose.errors import ConfigError, RuntimeNotAvailable
from tests import xnnpack_scale_models as scale


@pytest.fixture(scope="module")
def wide_add(digits_run, tmp_path_factory):
    run = scale.made(digits_run, tmp_path_factory, "wide_add", scale.wide_add)
    return run, run_conversion(run, ["fp32", "int8"], ConvertOptions())


def _as_converted(report):
    return report.int8_choice.candidates[0]


def _chosen(report):
    return next(c for c in report.int8_choice.candidates if c.chosen)


def test_the_int8_as_converted_leaves_the_wide_add_outside_xnnpack(wide_add):
    _, report = wide_add
    first = _as_converted(report)
    assert first.name == "int8" and first.ops_outside == {"ADD": 1, "SOFTMAX": 1}
    assert report.int8_choice.trigger == ("int8 leaves ops outside XNNPACK (ADD x1; "
                                          f"{first.partitions} partitions)")
    assert first.partitions == 2


def test_the_chosen_int8_keeps_that_add_float_and_runs_in_one_partition(wide_add):
    run, report = wide_add
    chosen, int8 = _chosen(report), report.mode("int8")
    assert chosen.name == "int8, float ADD x1" and chosen.float_ops == {"ADD": 1}
    assert int8.partitions == 1 and int8.ops_outside == {"SOFTMAX": 1}
    manifest = json.loads((run / "model_int8.json").read_text())
    assert manifest["settings"]["int8_candidate"] == "int8, float ADD x1"
    assert manifest["settings"]["float_ops"] == {"ADD": 1}
    # the tensor names too: what auto-fallback needs to start from this very int8
    assert manifest["settings"]["float_nodes"] == chosen.float_nodes
    assert len(chosen.float_nodes) == 1 and "add" in chosen.float_nodes[0].lower()


def test_the_chosen_int8_stays_within_the_drift_budget(wide_add):
    _, report = wide_add
    choice, chosen = report.int8_choice, _chosen(report)
    # no --max-drop: the budget is what the int8 as converted loses on the val split
    assert choice.selection_split == "val"
    assert choice.budget_pct == max(_as_converted(report).drop_pct, 0.0)
    assert chosen.drop_pct <= choice.budget_pct
    assert report.mode("int8").drift.top1_agreement >= 0.9  # on the held-out test split


def test_the_report_names_every_candidate_and_why_one_was_chosen(wide_add):
    run, report = wide_add
    text = (run / "conversion_report.md").read_text()
    assert "## int8 for this machine" in text
    assert "- tried because int8 leaves ops outside XNNPACK (ADD x1; 2 partitions)" in text
    assert "| int8, float ADD x1 | 1 partition, " in text
    assert f"- chosen: int8, float ADD x1: {report.int8_choice.reason}" in text


def test_a_sub_out_of_xnnpack_scale_range_is_kept_float_too(digits_run, tmp_path_factory):
    run = scale.made(digits_run, tmp_path_factory, "wide_sub", scale.wide_sub)
    report = run_conversion(run, ["int8"], ConvertOptions())
    assert _as_converted(report).ops_outside == {"SUB": 1, "SOFTMAX": 1}
    assert _chosen(report).float_ops == {"SUB": 1}
    assert report.mode("int8").partitions == 1


def test_a_wide_hard_swish_tries_both_rewrites_and_keeps_a_delegated_one(
        digits_run, tmp_path_factory):
    run = scale.made(digits_run, tmp_path_factory, "wide_hswish",
                     scale.wide_hard_swish)
    report = run_conversion(run, ["int8"], ConvertOptions())
    names = [c.name for c in report.int8_choice.candidates]
    assert names[0] == "int8, hard-swish rewrite" and "int8, no hard-swish rewrite" in names
    assert _as_converted(report).ops_outside.get("ADD") == 1
    no_rewrite = next(c for c in report.int8_choice.candidates
                      if c.name == "int8, no hard-swish rewrite")
    assert no_rewrite.ops_outside.get("HARD_SWISH") == 1
    chosen = _chosen(report)
    assert chosen.float_ops and chosen.partitions == 1
    assert report.mode("int8").ops_outside == {"SOFTMAX": 1}


def _row(mode: str, ms: float, instructions: int | None = None, target: str = "pi4",
         outside: dict[str, int] | None = None) -> ModeResult:
    return ModeResult(mode=mode, path=f"model_{mode}.tflite", size_bytes=1, size_ratio=1.0,
                      conversion_seconds=0, input_dtype="float32", output_dtype="float32",
                      latency_ms=ms, partitions=1, delegated_nodes=9, total_nodes=10,
                      ops_outside=outside or {"SOFTMAX": 1},
                      instructions_per_invoke=instructions,
                      instructions_target=target if instructions else None)


def _report(rows: list[ModeResult], target: str) -> ConversionReport:
    return ConversionReport(source="model.keras", source_sha256="a" * 64, task="image",
                            test_samples=0, keras_accuracy=None, calibration={},
                            settings={"max_drop": None, "target": target}, modes=rows)


def test_on_a_pi_target_the_slower_flag_uses_instruction_counts_and_names_the_pi():
    # faster on this machine, 2.1x the instructions on the emulated Pi 4
    rows = [_row("fp32", 0.43, 10_000_000), _row("int8", 0.30, 21_000_000)]
    assert _report(rows, "pi4").speed_notes() == [
        "int8 is 2.10x slower than fp32 on Pi 4 (emulated Cortex-A72) (21.00 vs 10.00 M "
        "instructions per invoke, 1 thread, XNNPACK): use fp32 there (10.00 M instructions)"]
    assert _report(rows, "host").speed_notes() == []


def test_counts_made_on_another_pi_are_not_used_for_this_target():
    rows = [_row("fp32", 0.43, 10_000_000, "pi5"), _row("int8", 0.30, 21_000_000, "pi5")]
    report = _report(rows, "pi4")
    assert report.speed_notes() == []
    columns, table = report.table(compact=True)
    assert columns[8] == "Minsn pi4" and [r[8] for r in table] == [None, None]
    columns, table = _report(rows, "pi5").table(compact=True)
    assert columns[8] == "Minsn pi5" and [r[8] for r in table] == ["10.000", "21.000"]
    assert _report(rows, "host").table(compact=True)[0][8] == "ms"


def test_int8_all_in_xnnpack_but_not_faster_than_fp32_on_the_target_is_a_trigger():
    fp32, int8 = _row("fp32", 0.43, 10_000_000), _row("int8", 0.72, 9_000_000)
    assert needs_candidates(int8, fp32, "pi4") is None
    assert needs_candidates(int8, fp32, "host") == (
        "int8 is not faster than fp32 on this machine (0.72 ms vs 0.43 ms)")
    outside = _row("int8", 0.1, outside={"ADD": 16, "SOFTMAX": 1})
    assert needs_candidates(outside, fp32, "host") == (
        "int8 leaves ops outside XNNPACK (ADD x16; 1 partitions)")


def test_an_unknown_target_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^--target must be one of host, pi4, pi5, not 'pi3'$"):
        ConvertOptions(target="pi3").validate(["int8"])


def test_a_pi_target_without_the_emulated_rig_is_a_one_line_error_naming_arm_setup(
        digits_run, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from edgepose.cli import main

    monkeypatch.setenv("EDGEPOSE_ARM_CACHE", str(tmp_path / "no-rig"))
    with pytest.raises(RuntimeNotAvailable, match="run `edgepose arm setup --pi 5 --python 3.13`"):
        ConvertOptions(target="pi5").validate(["int8"])
    result = CliRunner().invoke(main, ["convert", str(digits_run), "--target", "pi4"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "emulated Pi 4 rig (Python 3.11) is not set up: run `edgepose " \
        "arm setup --pi 4 --python 3.11`" in lines[0]
    assert not (digits_run / "conversion_report.json").exists() or \
        "pi4" not in (digits_run / "conversion_report.json").read_text()


def _rig_ready(pi: int) -> bool:
    from edgepose.arm.cpus import pi_cpu
    from edgepose.arm.rig import rig_for

    return shutil.which("qemu-aarch64") is not None and rig_for(pi_cpu(pi).default_python).ready


@pytest.mark.skipif(not _rig_ready(4), reason="emulated Pi 4 rig not set up: run `edgepose arm "
                    "setup --pi 4` (benchmarks/arm/ci_check.py sets it up)")
def test_target_pi4_judges_speed_by_instructions_counted_on_the_emulated_pi(digits_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    report = run_conversion(run, ["fp32", "int8"], ConvertOptions(target="pi4"))
    fp32, int8 = report.mode("fp32"), report.mode("int8")
    assert fp32.instructions_target == int8.instructions_target == "pi4"
    assert fp32.instructions_per_invoke > 100_000 and int8.instructions_per_invoke > 100_000
    ratio = int8.instructions_per_invoke / fp32.instructions_per_invoke
    flagged = [n for n in report.notes if n.startswith("int8 is ")]
    assert flagged == ([f"int8 is {ratio:.2f}x slower than fp32 on Pi 4 (emulated Cortex-A72) "
                        f"({int8.instructions_per_invoke / 1e6:.2f} vs "
                        f"{fp32.instructions_per_invoke / 1e6:.2f} M instructions per invoke, "
                        "1 thread, XNNPACK): use fp32 there "
                        f"({fp32.instructions_per_invoke / 1e6:.2f} M instructions, drop "
                        f"{format_points(fp32.drop_pct)} pts)"] if ratio > 1.05 else [])
    columns, rows = report.table()
    assert columns[-1] == "M instructions/invoke (pi4)"
    assert rows[1][-1] == f"{int8.instructions_per_invoke / 1e6:.3f}"
    assert "## Speed and staleness on the emulated pi4" in (run / "conversion_report.md"
                                                             ).read_text() or not report.notes


def test_the_cli_prints_which_int8_was_chosen_for_the_target(wide_add, tmp_path):
    from click.testing import CliRunner

    from edgepose.cli import main

    run = tmp_path / "run"
    shutil.copytree(wide_add[0], run)
    result = CliRunner().invoke(main, ["convert", str(run), "--int8", "--target", "host"])
    assert result.exit_code == 0, result.output
    assert ("int8 for --target host: int8, float ADD x1 (int8 leaves ops outside XNNPACK "
            "(ADD x1; 2 partitions))") in result.stdout
    result = CliRunner().invoke(main, ["convert", str(run), "--int8", "--json"])
    choice = json.loads(result.stdout)["int8_choice"]
    assert choice["chosen"] == "int8, float ADD x1" and choice["target"] == "host"
    assert [c["partitions"] for c in choice["candidates"]] == [2, 1]


def test_a_later_conversion_of_other_modes_keeps_why_the_int8_is_what_it_is(wide_add, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(wide_add[0], run)
    report = run_conversion(run, ["fp16"], ConvertOptions())
    assert [m.mode for m in report.modes] == ["fp32", "fp16", "int8"]
    assert report.int8_choice.chosen == "int8, float ADD x1"
    assert [c.name for c in report.int8_choice.candidates] == ["int8", "int8, float ADD x1"]
    assert "## int8 for this machine" in (run / "conversion_report.md").read_text()
