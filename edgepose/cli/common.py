"""Small helpers shared by the click commands (printing only, no logic)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from edgepose.fileio import _to_jsonable

# soft_wrap: a line longer than the terminal is not broken, so a printed command stays
# copyable whatever the console width (tables still fit the width).
# Piped into a file or a CI log, rich would assume 80 columns and fold table cells
# word by word; there a table gets the width it needs (up to PIPE_WIDTH), and COLUMNS,
# when set, still wins (rich reads it).
PIPE_WIDTH = 200


def _console_width() -> int | None:
    """None (rich measures the terminal) on a terminal or with COLUMNS set, else PIPE_WIDTH."""
    if "COLUMNS" in os.environ or sys.stdout.isatty():
        return None
    return PIPE_WIDTH


console = Console(stderr=False, soft_wrap=True, width=_console_width())


def print_json(obj: Any) -> None:
    """Print a result object (dataclass, dict, list) as JSON on stdout."""
    click.echo(json.dumps(_to_jsonable(obj), indent=2))


def print_table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """Print rows as a rich table."""
    table = Table(title=title)
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)


def parse_int_list(value: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4] with a clear error.

    Raises:
        click.BadParameter: anything but comma-separated integers.
    """
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None


class ThreadsParam(click.ParamType):
    """``--threads``: a count >= 1, or ``auto`` (timed on this device at start-up)."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        if str(value).lower() == "auto":
            return "auto"
        try:
            count = int(value)
        except (TypeError, ValueError):
            count = 0
        if count < 1:
            self.fail(f"expected a thread count >= 1 or 'auto', got {value!r}", param, ctx)
        return count


THREADS = ThreadsParam()
