"""Tables piped into a file or CI log keep their cells whole (rich would assume 80 columns)."""

from __future__ import annotations

import io
import sys

from rich.console import Console

from edgepose.cli import common
from edgepose.cli.common import PIPE_WIDTH, _console_width, print_table

COLUMNS = ["model", "KB", "first ms", "inv p50 ms", "e2e p50 ms", "e2e p90 ms", "acc", "agree",
           "KL"]
ROW = ["model_int8_fallback.tflite t2", "2701", "12.345", "1.500", "2.180", "2.420", "0.958",
       "0.991", "0.0123"]


def test_piped_output_gets_the_wide_width_unless_columns_is_set(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert _console_width() == PIPE_WIDTH
    monkeypatch.setenv("COLUMNS", "100")
    assert _console_width() is None


def test_a_piped_table_keeps_every_header_and_cell_on_one_line(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(common, "console", Console(file=out, width=PIPE_WIDTH, soft_wrap=True))
    print_table("bench", COLUMNS, [ROW])
    lines = out.getvalue().splitlines()
    header = next(line for line in lines if "inv p50 ms" in line)
    assert all(name in header for name in COLUMNS)
    assert any(all(cell in line for cell in ROW) for line in lines)


def test_at_80_columns_the_same_table_would_fold_its_cells(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(common, "console", Console(file=out, width=80, soft_wrap=True))
    print_table("bench", COLUMNS, [ROW])
    assert not any("inv p50 ms" in line for line in out.getvalue().splitlines())
