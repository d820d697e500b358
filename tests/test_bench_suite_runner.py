"""benchmarks/run.py: a partial (--only) run keeps the other steps' record (no running steps)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from run import StepResult, earlier_steps, machine_markdown, other_cpus  # noqa: E402

ORDER = ["train_throughput", "convert_matrix", "latency_matrix", "tradeoff"]


def _machine_json(path: Path, steps: list[dict]) -> Path:
    path.write_text(json.dumps({"device": {}, "steps": steps}))
    return path


def test_earlier_steps_keep_the_steps_not_rerun_in_suite_order(tmp_path):
    recorded = _machine_json(tmp_path / "machine.json", [
        {"name": "tradeoff", "status": "failed (exit 1)", "seconds": 0.2, "log": None},
        {"name": "convert_matrix", "status": "ok", "seconds": 1081.0, "log": "c.log",
         "written": ["convert_matrix.md"], "finished": "2026-11-30T20:25:00Z"},
        {"name": "train_throughput", "status": "ok", "seconds": 91.0, "log": "t.log"},
    ])
    kept = earlier_steps(recorded, {"latency_matrix", "tradeoff"}, ORDER)
    assert [r.name for r in kept] == ["train_throughput", "convert_matrix"]
    assert kept[1].seconds == 1081.0 and kept[1].finished == "2026-11-30T20:25:00Z"
    assert kept[0].finished is None  # recorded before the field existed


def test_earlier_steps_of_a_missing_or_unreadable_record_are_none(tmp_path):
    assert earlier_steps(tmp_path / "absent.json", set(), ORDER) == []
    broken = tmp_path / "machine.json"
    broken.write_text("{not json")
    assert earlier_steps(broken, set(), ORDER) == []
    assert earlier_steps(_machine_json(tmp_path / "odd.json", [{"nom": "x"}]), set(), ORDER) == []


def test_machine_markdown_lists_every_recorded_step_with_when_it_finished():
    facts = {"device": {"slug": "x86_64-test", "cpu_model": "cpu", "architecture": "64bit",
                        "cores": 2, "board": None, "system": "Linux", "governor": None,
                        "python": "3.11", "warnings": []}, "packages": {"numpy": "2.4"}}
    text = machine_markdown(facts, [
        StepResult("convert_matrix", "ok", 1081.4, None, [], "2026-11-30T20:25:00Z"),
        StepResult("latency_matrix", "ok", 1300.0, None, [], None)], quick=False)
    assert "| convert_matrix | ok | 1081 | 2026-11-30T20:25:00Z | not recorded |" in text
    assert "| latency_matrix | ok | 1300 | - | not recorded |" in text


ZEN4 = "x86 family 25 model 17 stepping 1; avx2 fma avx512f avx512_vnni avx512_bf16"
ZEN5 = "x86 family 26 model 2 stepping 0; avx2 fma avx512f avx512_vnni avx512_bf16"


def _facts(cpu_id: str | None) -> dict:
    return {"device": {"slug": "x86_64-amd-epyc", "cpu_model": "AMD EPYC", "cpu_id": cpu_id,
                       "architecture": "64bit", "cores": 2, "board": None, "system": "Linux",
                       "governor": None, "python": "3.11", "warnings": []}, "packages": {}}


def test_steps_recorded_on_another_cpu_under_the_same_name_are_named():
    steps = [StepResult("convert_matrix", "ok", 1081.0, None, [], None, ZEN5),
             StepResult("latency_matrix", "ok", 764.0, None, [], None, ZEN4),
             StepResult("tradeoff", "ok", 1.0, None, [], None),  # before ids were kept
             StepResult("arm_instructions", "ok", 363.0, None, [], None)]  # any host
    assert other_cpus(_facts(ZEN4), steps) == ["convert_matrix", "tradeoff"]
    text = machine_markdown(_facts(ZEN4), steps, quick=False)
    assert f"| CPU id | {ZEN4} |" in text
    assert f"| convert_matrix | ok | 1081 | - | {ZEN5} |" in text
    assert "| latency_matrix | ok | 764 | - | this one |" in text
    assert "| tradeoff | ok | 1 | - | not recorded |" in text
    assert "| arm_instructions | ok | 363 | - | any (emulated ARM instruction counts) |" in text
    # before the steps table, so the README's copy of the first two tables carries it
    assert "## Steps recorded in this folder\n\n> warning: convert_matrix, tradeoff ran on " \
        "another CPU than the one above, or on one not recorded, under the same name: compare " \
        "their figures with the other steps' only after rerunning them here " \
        "(`benchmarks/run.py --only convert_matrix,tradeoff`).\n\n| step |" in text


def test_steps_all_on_this_cpu_carry_no_warning_and_their_id_survives_a_rerun(tmp_path):
    steps = [StepResult("convert_matrix", "ok", 1081.0, None, [], None, ZEN4)]
    assert other_cpus(_facts(ZEN4), steps) == []
    assert "warning" not in machine_markdown(_facts(ZEN4), steps, quick=False)
    recorded = _machine_json(tmp_path / "machine.json", [
        {"name": "convert_matrix", "status": "ok", "seconds": 1081.0, "log": None,
         "cpu_id": ZEN5}])
    (kept,) = earlier_steps(recorded, {"latency_matrix"}, ORDER)
    assert kept.cpu_id == ZEN5
