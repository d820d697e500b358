"""How `edgepose arm bench` words ARM-vs-x86 agreement: per row, calm, with the reason.

The kind of fault: a difference that is expected and explained (different int8
kernels on each CPU) reported as an alarm for the whole table, and no word on which
row differs or why. Each case builds the result the emulator would return and
checks the exact words printed.
"""

from __future__ import annotations

from edgepose.arm.emulated import DIFFERENCE_CAUSES, EmulatedResult, ModelRun, agreement
from edgepose.cli.arm_view import agreement_cell, agreement_notes, print_emulated


def _run(kernels: str, *, identical: bool, diff: float = 0.0, integer: bool = True,
         top1: float = 1.0, mode: str = "int8") -> ModelRun:
    return ModelRun(
        model=f"/models/m_{mode}.tflite", mode=mode, kernels=kernels,
        xnnpack_active=kernels == "xnnpack", delegated_nodes=6 if kernels == "xnnpack" else 0,
        total_nodes=7, delegation="-", samples=6, integer_output=integer, identical=identical,
        max_abs_diff=diff, top1_agreement=top1, accuracy_arm=None, accuracy_x86=None,
        instructions_per_invoke=None, agreement=agreement(identical, integer, diff))


def _printed(result, monkeypatch, capsys) -> str:
    from edgepose.cli import common

    monkeypatch.setattr(common.console, "width", 400)  # one table row per line
    print_emulated(result)
    return capsys.readouterr().out


def _result(*runs: ModelRun) -> EmulatedResult:
    return EmulatedResult(pi=4, core="Cortex-A72", qemu_cpu="cortex-a72", guest_python="3.11",
                          distro="bookworm", backend="ai_edge_litert 2.3.0", qemu="qemu 7.2",
                          runs=list(runs), emulator_seconds=1.0, ipc_assumed=[0.8, 1.3],
                          clock_ghz=[1.5, 1.8])


def test_agreement_phrases():
    assert agreement(True, True, 0.0) == "identical"
    assert agreement(False, True, 20.0) == "20 steps apart"
    assert agreement(False, True, 1.0) == "1 step apart"
    assert agreement(False, False, 4.17e-07) == "max |d| 4.2e-07 (float)"


def test_only_reference_row_differs_is_reported_calmly_on_that_row(monkeypatch, capsys):
    result = _result(_run("xnnpack", identical=True), _run("reference", identical=False,
                                                           diff=20.0))
    out = _printed(result, monkeypatch, capsys)
    assert "DIFFER" not in out
    assert "20 steps apart (reference kernels)" in out
    assert "integer outputs: 1 of 2 rows bit-identical to x86" in out
    assert agreement_notes(result) == [
        "reference kernels: 1 of 1 integer rows differ from x86 by up to 20 steps, top-1 the "
        f"same on every input. Why: {DIFFERENCE_CAUSES['reference']}."]


def test_xnnpack_row_difference_names_xnnpack_and_its_cause():
    run = _run("xnnpack", identical=False, diff=2.0)
    assert agreement_cell(run) == "2 steps apart (XNNPACK)"
    notes = agreement_notes(_result(run, _run("reference", identical=True)))
    assert notes == [
        "XNNPACK: 1 of 1 integer rows differ from x86 by up to 2 steps, top-1 the same on every "
        f"input. Why: {DIFFERENCE_CAUSES['xnnpack']}."]


def test_changed_top1_is_said_not_hidden():
    notes = agreement_notes(_result(
        _run("reference", identical=False, diff=17.0, top1=5 / 6),
        _run("reference", identical=False, diff=3.0)))
    assert notes[0].startswith("reference kernels: 2 of 2 integer rows differ from x86 by up "
                               "to 17 steps, top-1 changed on 1 of them.")


def test_float_rows_never_count_as_integer_differences(monkeypatch, capsys):
    result = _result(_run("xnnpack", identical=False, diff=4.17e-07, integer=False,
                          mode="fp32"), _run("xnnpack", identical=True))
    out = _printed(result, monkeypatch, capsys)
    assert "max |d| 4.2e-07 (float)" in out
    assert "integer outputs: 1 of 1 rows bit-identical to x86" in out
    assert agreement_notes(result) == []
