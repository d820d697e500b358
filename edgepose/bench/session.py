"""One ``edgepose bench`` call: measure, write the requested files, compare with a baseline."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgepose.bench.baseline import BaselineComparison, compare_with_baseline
from edgepose.bench.bench_report import write_outputs
from edgepose.bench.harness import measure
from edgepose.bench.options import BenchOptions
from edgepose.bench.results import BenchResult
from edgepose.bench.stats import Clock


@dataclass
class BenchReport:
    """The measurement, what was written, and the baseline comparison (if asked for)."""

    result: BenchResult
    baseline: BaselineComparison | None = None
    written: list[Path] = field(default_factory=list)


def bench(models: Sequence[str | Path], options: BenchOptions, *,
          json_path: str | Path | None = None, csv_path: str | Path | None = None,
          md_path: str | Path | None = None, plot_path: str | Path | None = None,
          baseline: str | Path | None = None, tolerance: float = 0.10,
          clock: Clock = time.perf_counter_ns) -> BenchReport:
    """Run :func:`measure`, write the outputs, and compare with ``baseline``.

    ``tolerance`` is the allowed slow-down as a ratio (0.10 = 10 %). A regression
    does not raise here: call ``report.baseline.raise_on_regression()`` after
    showing the result (the CLI does). Raises what :func:`measure` raises.
    """
    result = measure(models, options, clock=clock)
    comparison = None
    if baseline is not None:
        comparison = compare_with_baseline(result, baseline, tolerance)
        result.warnings.extend(comparison.warnings)
    written = write_outputs(result, json_path, csv_path, md_path, plot_path)
    return BenchReport(result, comparison, written)
