"""Bench results as a comparison table, CSV, Markdown, JSON and latency plots.

Every format is built from the same :func:`table` (one row per model x
XNNPACK setting x thread count), so the terminal, the CSV and the Markdown
always agree. JSON is the full :class:`BenchResult` via ``fileio.write_json``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from edgepose.bench.results import BenchResult, BenchRow
from edgepose.errors import ConfigError
from edgepose.fileio import atomic_path, write_json, write_text

COLUMNS = ["model", "mode", "size KB", "threads", "xnnpack", "load ms", "first invoke ms",
           "warmup invoke ms", "invoke p50 ms",
           "invoke p90 ms", "e2e p50 ms", "e2e p90 ms", "e2e per s", "accuracy",
           "top-1 agree", "mean |dp|", "max |dp|", "KL", "reference"]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def row_values(row: BenchRow) -> list[str]:
    """The table cells of one row, as printed and written to CSV/Markdown."""
    drift = row.drift
    return [
        Path(row.model).name, row.mode, f"{row.size_bytes / 1024:.1f}",
        "default" if row.threads is None else str(row.threads),
        "on" if row.xnnpack else "off", _fmt(row.load_ms, 1),
        _fmt(row.first_invoke_ms), _fmt(row.warmup_invoke_ms),
        _fmt(row.invoke.p50_ms), _fmt(row.invoke.p90_ms),
        _fmt(row.end_to_end.p50_ms), _fmt(row.end_to_end.p90_ms),
        _fmt(row.end_to_end.throughput_per_s, 1), _fmt(row.accuracy, 4),
        _fmt(drift.top1_agreement, 4) if drift else "",
        _fmt(drift.mean_abs_diff, 5) if drift else "",
        _fmt(drift.max_abs_diff, 4) if drift else "",
        _fmt(max(drift.mean_kl, 0.0), 5) if drift else "", row.reference or "",
    ]


def table(result: BenchResult) -> tuple[list[str], list[list[str]]]:
    """``(columns, rows)`` of the comparison table."""
    return list(COLUMNS), [row_values(row) for row in result.rows]


# every latency header names its unit: a table pasted elsewhere keeps it
TERMINAL_COLUMNS = ["model", "KB", "first ms", "inv p50 ms", "e2e p50 ms", "e2e p90 ms", "acc",
                    "agree", "KL"]


def _short_name(row: BenchRow, rows: list[BenchRow]) -> str:
    # The mode is shortest; fall back to the file name when modes repeat across files.
    files_per_mode = {Path(r.model).name for r in rows if r.mode == row.mode}
    name = row.mode if row.mode != "?" and len(files_per_mode) == 1 else Path(row.model).name
    threads = "" if row.threads is None else f" t{row.threads}"
    return name + threads + ("" if row.xnnpack else " noxnn")


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def terminal_table(result: BenchResult) -> tuple[list[str], list[list[str]]]:
    """A narrower table for the terminal, latencies in ms (full columns go to CSV/Markdown).

    ``model`` is the mode (or file name) with ``t<threads>`` and ``noxnn`` when XNNPACK is off;
    ``first`` is the first invoke after loading (ms), apart from the steady state; the
    invoke p90 and the warm-up mean are in the CSV/Markdown/JSON.
    """
    rows = []
    for row in result.rows:
        drift = row.drift
        rows.append([
            _short_name(row, result.rows), f"{row.size_bytes / 1024:.0f}",
            _ms(row.first_invoke_ms) if row.first_invoke_ms is not None else "",
            _ms(row.invoke.p50_ms),
            _ms(row.end_to_end.p50_ms), _ms(row.end_to_end.p90_ms),
            _fmt(row.accuracy, 3), _fmt(drift.top1_agreement, 3) if drift else "",
            _fmt(max(drift.mean_kl, 0.0), 4) if drift else "",  # clipping can give -1e-9
        ])
    return list(TERMINAL_COLUMNS), rows


def device_line(result: BenchResult) -> str:
    """One line naming the device, runtime and settings."""
    d, s = result.device, result.settings
    where = d.board or d.cpu_model
    temps = ""
    if d.before and d.after and d.before.temperature_c is not None:
        temps = f", SoC {d.before.temperature_c:.1f} -> {d.after.temperature_c:.1f} C"
    line = (f"{where} ({d.machine}, {d.cores} cores, governor {d.governor or 'unknown'}{temps}); "
            f"Python {d.python}, {d.runtime}; warmup {s.warmup}, runs {s.runs}; "
            f"end-to-end input: {', '.join(sorted({r.end_to_end_input for r in result.rows}))}")
    return line + (f"; accuracy on {s.sample}" if s.sample else "")


def to_csv(result: BenchResult) -> str:
    """The table as CSV text, with a machine column for merging files from several devices."""
    columns, rows = table(result)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["machine", *columns])
    for row in rows:
        writer.writerow([result.device.slug, *row])
    return buffer.getvalue()


def to_markdown(result: BenchResult) -> str:
    """The table as a Markdown document with the device facts and warnings."""
    columns, rows = table(result)
    lines = [f"# edgepose bench on {result.device.slug}", "", device_line(result), ""]
    lines += [f"> warning: {w}" for w in result.warnings]
    if result.warnings:
        lines.append("")
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    delegations = sorted({(Path(r.model).name, r.delegation) for r in result.rows if r.xnnpack})
    if delegations:
        lines += ["", "XNNPACK delegation:", ""]
        lines += [f"- {name}: {text}" for name, text in delegations]
    tensors = dict((Path(r.model).name, r.tensors) for r in result.rows if r.tensors)
    if tensors:
        lines += ["", "Inputs and outputs:", ""]
        lines += [f"- {name}: {t.describe()}" for name, ts in tensors.items() for t in ts]
    if result.skipped:
        lines += ["", f"Skipped samples ({len(result.skipped)}):", ""]
        lines += [f"- `{item.file}`: {item.reason}" for item in result.skipped]
    return "\n".join(lines) + "\n"


def write_outputs(result: BenchResult, json_path: str | Path | None = None,
                  csv_path: str | Path | None = None, md_path: str | Path | None = None,
                  plot_path: str | Path | None = None) -> list[Path]:
    """Write the requested files atomically; return their paths."""
    written = []
    if json_path:
        written.append(write_json(json_path, result))
    if csv_path:
        written.append(write_text(csv_path, to_csv(result)))
    if md_path:
        written.append(write_text(md_path, to_markdown(result)))
    if plot_path:
        written.append(plot_latency(result, plot_path))
    return written


def plot_latency(result: BenchResult, path: str | Path) -> Path:
    """Latency of every row as one image: end-to-end box per row, and the CDFs.

    Left: one horizontal box per row (model, threads, XNNPACK) of the
    end-to-end latency (box p25-p75, line median, whiskers p5-p95, outliers
    not drawn), labelled on the axis. Right: the CDF of end-to-end (solid) and
    invoke-only (dotted) latency. Each row keeps one colour in both panels, no
    colour repeated (:func:`row_colours`); one legend names every row and the two
    line styles. Both panels share one latency axis (ms), logarithmic when p99/p1
    of all samples exceeds 20 (then it spans a decade, so it has a labelled tick).
    Raises ConfigError when matplotlib is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install matplotlib") from None
    import numpy as np
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, NullFormatter

    rows = [row for row in result.rows if row.end_to_end_ms or row.invoke_ms]
    names = [_row_name(row) for row in rows]
    colours = row_colours(len(rows))
    height = max(4.5, 0.32 * len(rows) + 2.0)
    # One latency axis for both panels: the boxes alone (p5-p95) can span less than the
    # decade a log axis labels, which left the box panel with no readable tick.
    fig, (box_ax, cdf_ax) = plt.subplots(1, 2, figsize=(13, height), sharex=True,
                                         gridspec_kw={"width_ratios": [1, 1.2]})
    e2e = [np.asarray(row.end_to_end_ms or row.invoke_ms, dtype=float) for row in rows]
    if rows:
        # matplotlib 3.10 renamed vert=False to orientation="horizontal" (and deprecated vert).
        sideways = ({"orientation": "horizontal"} if _version(matplotlib.__version__) >= (3, 10)
                    else {"vert": False})
        boxes = box_ax.boxplot(e2e[::-1], **sideways, whis=(5, 95), showfliers=False,
                               patch_artist=True, widths=0.6,
                               medianprops={"color": "black"})
        for patch, colour in zip(boxes["boxes"], colours[::-1], strict=True):
            patch.set_facecolor(colour)
        box_ax.set_yticks(range(1, len(rows) + 1), names[::-1], fontsize=8)
    for row, colour in zip(rows, colours, strict=True):
        for values, style in ((row.end_to_end_ms, "-"), (row.invoke_ms, ":")):
            if values:
                data = np.sort(np.asarray(values, dtype=float))
                cdf_ax.plot(data, np.arange(1, data.size + 1) / data.size, style, color=colour,
                            linewidth=1.2)
    everything = np.concatenate([np.asarray(v, dtype=float) for r in rows
                                 for v in (r.end_to_end_ms, r.invoke_ms) if v] or [np.ones(1)])
    low, high = np.percentile(everything, [1, 99])
    for ax in (box_ax, cdf_ax):
        if low > 0 and high / low > 20:
            ax.set_xscale("log")
            # Plain numbers at the decades only: minor labels (2x10^-1 ...) collide.
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("latency (ms)")
        ax.grid(axis="x", alpha=0.3)
    box_ax.set_title("end-to-end latency per row\n(box p25-p75, line median, whiskers p5-p95)",
                     fontsize=9)
    cdf_ax.set_ylabel("fraction of samples")
    cdf_ax.set_title("latency CDF (solid: end-to-end, dotted: invoke only)", fontsize=9)
    handles = [Line2D([], [], color=c, linewidth=6) for c in colours]
    handles += [Line2D([], [], color="black", linestyle="-"),
                Line2D([], [], color="black", linestyle=":")]
    fig.legend(handles, [*names, "end-to-end", "invoke only"], loc="upper left",
               bbox_to_anchor=(1.0, 0.95), fontsize=8, ncols=1 if len(rows) <= 16 else 2,
               frameon=False)
    fig.suptitle(f"edgepose bench on {result.device.slug}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png", bbox_inches="tight")
    plt.close(fig)
    return path


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def _row_name(row: BenchRow) -> str:
    threads = "default" if row.threads is None else row.threads
    return f"{Path(row.model).stem} t={threads}{'' if row.xnnpack else ' no-XNNPACK'}"


def row_colours(count: int) -> list[tuple[float, float, float, float]]:
    """``count`` RGBA colours, none repeated: tab10, tab20, then evenly spaced on turbo."""
    import matplotlib
    import numpy as np

    if count <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(count)]
    if count <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(count)]
    return [matplotlib.colormaps["turbo"](x) for x in np.linspace(0.05, 0.95, count)]
