"""benchmarks/int8_matrix.py: the verdicts, the summary counts and the table (no training)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from int8_matrix import (  # noqa: E402
    NO_PRETRAINED,
    Cell,
    drift_verdict,
    markdown,
    measured,
    merge,
    summary,
    verdict,
)


def _cell(a76=(100, 50), a72=(100, 90), x86=0.5, load=0.3, drop=0.5, **kw) -> Cell:
    cell = Cell(kw.pop("backbone", "mobilenet_v2"), kw.pop("size", 96),
                kw.pop("start", "scratch"), keras_accuracy=0.9, int8_drop_pts=drop,
                int8_delegation="1 partition, 66/67 nodes; outside: SOFTMAX x1",
                x86_ratio=x86, x86_load=load, **kw)
    for column, pair in (("a76", a76), ("a72", a72)):
        if pair is not None:
            cell.insns[column] = {"fp32": pair[0], "int8": pair[1]}
    return cell


def _results(cells: list[Cell], max_drop: float = 2.0) -> dict:
    from dataclasses import asdict

    return {"machine": "x86_64-test", "date": "2026-11-30", "commands": ["python x"],
            "qemu": "qemu 7.2", "max_drop": max_drop,
            "settings": {"data": "digits", "scratch_epochs": 1, "head_epochs": 1,
                         "fine_tune_epochs": 1, "x86_blocks": 2, "x86_per_block": 3},
            "cells": [asdict(c) for c in cells]}


def test_ratio_is_int8_instructions_over_fp32_instructions():
    assert _cell(a76=(200, 50)).ratio("a76") == pytest.approx(0.25)
    assert _cell(a72=(400, 300)).ratio("a72") == pytest.approx(0.75)


def test_target_met_at_exactly_the_bound_and_missed_just_above():
    assert verdict(_cell(a76=(100, 60)), "a76") == "met"  # 0.6 <= 0.6
    assert verdict(_cell(a76=(1000, 601)), "a76") == "not met"
    assert verdict(_cell(a72=(100, 70)), "a72") == "met"  # A72 target is 0.7
    assert verdict(_cell(a72=(1000, 701)), "a72") == "not met"


def test_x86_ratio_under_load_is_busy_not_a_verdict():
    assert verdict(_cell(x86=0.4, load=1.51), "x86") == "busy"
    assert verdict(_cell(x86=0.4, load=1.5), "x86") == "met"
    assert verdict(_cell(x86=0.61, load=0.2), "x86") == "not met"


def test_unmeasured_column_has_no_verdict():
    assert verdict(_cell(a72=None), "a72") == "-"
    assert verdict(_cell(x86=None), "x86") == "-"
    assert verdict(Cell("mobilenet_v3_small", 96, "pretrained", unavailable=NO_PRETRAINED),
                   "a76") == "-"


def test_drift_verdict_against_the_budget():
    assert drift_verdict(_cell(drop=2.0), 2.0) == "met"
    assert drift_verdict(_cell(drop=2.01), 2.0) == "not met"
    assert drift_verdict(_cell(drop=-1.0), 0.0) == "met"  # int8 more accurate
    assert drift_verdict(_cell(drop=None), 2.0) == "-"


def test_summary_counts_met_not_met_and_busy_per_column():
    cells = [_cell(a76=(100, 40), a72=(100, 90), x86=0.5, load=3.0, drop=0.1),
             _cell(a76=(100, 70), a72=(100, 65), x86=0.7, load=0.1, drop=5.0),
             Cell("efficientnet_b0", 96, "pretrained", unavailable=NO_PRETRAINED)]
    assert summary(cells, 2.0) == {
        "a76": {"met": 1, "not met": 1, "busy": 0},
        "x86": {"met": 0, "not met": 1, "busy": 1},
        "a72": {"met": 1, "not met": 1, "busy": 0},
        "drift": {"met": 1, "not met": 1, "busy": 0},
    }


def test_table_row_shows_counts_ratios_and_verdicts():
    text = markdown(_results([_cell(a76=(23_100_000, 9_400_000), a72=(24_000_000, 21_200_000),
                                    x86=0.48, load=0.4, drop=0.37)]))
    row = next(line for line in text.splitlines() if line.startswith("| mobilenet_v2 | 96"))
    assert row == ("| mobilenet_v2 | 96 | scratch | 90.0% | 0.37 met "
                   "| 1 partition, 66/67 nodes; outside: SOFTMAX x1 | 23.1M / 9.4M | 0.41 met "
                   "| 24.0M / 21.2M | 0.88 NOT met | 0.48 met | - |")
    assert "**Summary** over 1 measured cells (0 not available offline): A76 <= 0.6: 1 met, " \
           "0 not met; x86 <= 0.6: 1 met, 0 not met; A72 <= 0.7: 0 met, 1 not met; " \
           "drop <= 2.0 pts: 1 met, 0 not met; drop <= 2.0 pts with int8 or, where it is over, " \
           "its int8-fallback row: 1 met, 0 not met." in text
    assert "Made by `python x`. Digits (digits), trained" in text  # the command line
    assert "a72_analysis.md" in text  # why A72 cells miss


def test_busy_x86_ratio_is_marked_not_a_result_in_the_table():
    text = markdown(_results([_cell(x86=0.45, load=6.7)]))
    assert "| 0.45 (busy: not a result, load 6.7) |" in text
    assert "x86 <= 0.6: 0 met, 0 not met, 1 busy (not a result)" in text


def test_unavailable_pretrained_cell_says_why_and_is_not_counted():
    text = markdown(_results([Cell("mobilenet_v3_large", 160, "pretrained",
                                   unavailable=NO_PRETRAINED)]))
    assert ("| mobilenet_v3_large | 160 | pretrained | not available offline (Keras "
            "weights='imagenet' downloads them) |") in text
    assert "**Summary** over 0 measured cells (1 not available offline)" in text


def test_merge_x86_only_keeps_stored_instruction_counts():
    from dataclasses import asdict

    stored = [asdict(_cell(a76=(100, 40), x86=0.9, load=5.0))]
    fresh = Cell("mobilenet_v2", 96, "scratch", x86_ratio=0.5, x86_load=0.2)
    merged = merge(stored, fresh, "x86")
    assert len(merged) == 1
    assert merged[0]["insns"]["a76"] == {"fp32": 100, "int8": 40}
    assert merged[0]["x86_ratio"] == 0.5 and merged[0]["x86_load"] == 0.2


def test_merge_x86_only_keeps_the_stored_fallback_row():
    from dataclasses import asdict

    stored_cell = _cell(a76=(100, 40), drop=31.23)
    stored_cell.insns["a76"]["int8-fallback"] = 45
    stored_cell.fallback_drop_pts, stored_cell.fallback_float_layers = 1.86, 8
    fresh = Cell("mobilenet_v2", 96, "scratch", x86_ratio=0.5, x86_load=0.2)
    merged = merge([asdict(stored_cell)], fresh, "x86")[0]
    assert merged["fallback_drop_pts"] == 1.86 and merged["fallback_float_layers"] == 8
    assert merged["insns"]["a76"]["int8-fallback"] == 45


def test_merge_orders_cells_by_size_then_backbone_then_start():
    from dataclasses import asdict

    cells: list[dict] = []
    for cell in (Cell("efficientnet_b0", 160, "scratch"), Cell("mobilenet_v2", 160, "pretrained"),
                 Cell("mobilenet_v2", 96, "scratch"), Cell("mobilenet_v2", 160, "scratch")):
        cells = merge(cells, cell, "all")
    assert [(c["backbone"], c["size"], c["start"]) for c in cells] == [
        ("mobilenet_v2", 96, "scratch"), ("mobilenet_v2", 160, "scratch"),
        ("mobilenet_v2", 160, "pretrained"), ("efficientnet_b0", 160, "scratch")]
    assert asdict(Cell("x", 1, "scratch"))["insns"] == {}


def test_resume_skips_only_cells_stored_with_the_asked_columns():
    from dataclasses import asdict

    stored = [asdict(_cell(a76=(100, 40), a72=(100, 90), x86=None))]
    assert measured(stored, "mobilenet_v2/96/scratch", "arm") is True
    assert measured(stored, "mobilenet_v2/96/scratch", "x86") is False
    assert measured(stored, "mobilenet_v2/96/scratch", "all") is False
    assert measured(stored, "mobilenet_v2/160/scratch", "arm") is False


def test_fallback_column_shows_drop_float_ops_and_instruction_ratios():
    cell = _cell(a76=(1000, 400), a72=(1000, 900), drop=31.23)
    cell.insns["a76"]["int8-fallback"] = 420
    cell.insns["a72"]["int8-fallback"] = 950
    cell.fallback_drop_pts, cell.fallback_float_layers = 1.86, 8
    cell.fallback_strategy = "ranked"
    cell.fallback_delegation = "1 partition, 70/71 nodes; outside: SOFTMAX x1"
    text = markdown(_results([cell]))
    row = next(line for line in text.splitlines() if line.startswith("| mobilenet_v2 | 96"))
    assert row.endswith("| 1.86 met; 8 float ops (ranked); A76 0.42; A72 0.95; "
                        "1 partition, 70/71 nodes; outside: SOFTMAX x1 |")
    assert "| 31.23 NOT met |" in row  # the plain int8 row is still shown as measured


def test_the_budget_counted_on_what_ships_int8_or_its_fallback_row():
    from int8_matrix import fallback_summary

    cells = [_cell(drop=0.5),  # int8 fits
             _cell(drop=5.2, fallback_drop_pts=1.86, fallback_x86_ratio=0.49),  # fallback fits
             _cell(drop=31.2, fallback_drop_pts=2.60, fallback_x86_ratio=0.62),  # neither
             _cell(drop=6.0)]  # over, no fallback row
    assert fallback_summary(cells, 2.0) == (
        "drop <= 2.0 pts with int8 or, where it is over, its int8-fallback row: 2 met, 2 not met "
        "(int8-fallback x86 time <= 0.6 of fp32: 1 of 2)")
    assert fallback_summary([_cell(drop=0.5)], 2.0) == (
        "drop <= 2.0 pts with int8 or, where it is over, its int8-fallback row: 1 met, 0 not met")
