"""Compare a bench result with a stored one (a per-device reference file).

Like pycoral's ``inference_reference_<device>.csv``: keep the JSON that
``edgepose bench --json FILE`` wrote on a device, and later runs on the same
kind of device are compared with it. A row matches on (model file name,
threads, XNNPACK). A latency (p50, invoke and end to end) more than
``tolerance`` above the baseline, or an accuracy lower by more than
``accuracy_drop`` (absolute), is a regression. A row of this run with no
baseline row fails too (a comparison that compared nothing is not a pass),
unless the caller allows it (``edgepose bench --allow-missing-baseline``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgepose.bench.results import BenchResult
from edgepose.errors import ConfigError, DataError, RegressionDetected
from edgepose.fileio import read_json

LATENCY_METRICS = (("invoke", "p50_ms"), ("end_to_end", "p50_ms"))


@dataclass
class MetricDelta:
    """One metric of one row, against its baseline."""

    row: str  # "model_int8.tflite t=2 xnnpack"
    metric: str  # e.g. "invoke.p50_ms", "accuracy"
    baseline: float
    current: float
    ratio: float  # current / baseline
    regressed: bool


@dataclass
class BaselineComparison:
    """All compared metrics; ``regressions`` lists the ones beyond tolerance."""

    baseline: str
    tolerance: float
    deltas: list[MetricDelta] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # rows with no baseline
    available: list[str] = field(default_factory=list)  # the baseline's rows
    warnings: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.regressed]

    def raise_on_regression(self, allow_unmatched: bool = False) -> None:
        """Raise :class:`RegressionDetected` naming every regressed metric.

        Rows without a baseline raise :class:`DataError` (exit 2) naming them and
        the baseline's rows, unless ``allow_unmatched``.

        Raises:
            RegressionDetected: a metric is worse than the baseline beyond the tolerance (exit 3).
            DataError: rows have no baseline row and ``allow_unmatched`` is off.
        """
        if self.unmatched and not allow_unmatched:
            available = ", ".join(self.available) or "none"
            raise DataError(f"no baseline row for {', '.join(self.unmatched)} (the baseline has: "
                            f"{available}); record one with --json, or pass "
                            "--allow-missing-baseline", self.baseline)
        if self.regressions:
            parts = [f"{d.row} {d.metric} {d.current:.4g} vs {d.baseline:.4g} "
                     f"(x{d.ratio:.2f})" for d in self.regressions]
            raise RegressionDetected(f"{len(parts)} regression(s) beyond "
                                     f"{self.tolerance:.0%} of {self.baseline}: "
                                     + "; ".join(parts))


def parse_tolerance(text: str | float) -> float:
    """``"10%"`` or ``"0.1"`` -> 0.1.

    Raises:
        ConfigError: a negative tolerance, or text that is neither a percentage nor a number.
    """
    try:
        value = float(str(text).strip().rstrip("%")) / (100 if str(text).strip().endswith("%")
                                                         else 1)
    except ValueError:
        raise ConfigError(f"tolerance must look like 10% or 0.1, not {text!r}") from None
    if value < 0:
        raise ConfigError(f"tolerance must be >= 0, got {text!r}")
    return value


def _key(model: str, threads, xnnpack: bool) -> str:
    t = "default" if threads is None else threads
    return f"{Path(model).name} t={t} {'xnnpack' if xnnpack else 'no-xnnpack'}"


def compare_with_baseline(result: BenchResult, baseline_path: str | Path, tolerance: float,
                          accuracy_drop: float = 0.005) -> BaselineComparison:
    """Compare ``result`` with the bench JSON at ``baseline_path``.

    Raises:
        DataError: the baseline file is missing, not JSON, or not an edgepose bench result.
    """
    data = read_json(baseline_path)
    try:
        base_rows = {_key(r["model"], r["threads"], r["xnnpack"]): r for r in data["rows"]}
        base_slug = data.get("device", {}).get("slug")
    except (KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"not an edgepose bench result ({exc})", baseline_path) from None
    comparison = BaselineComparison(str(baseline_path), tolerance, available=list(base_rows))
    if base_slug and base_slug != result.device.slug:
        comparison.warnings.append(f"baseline was recorded on {base_slug}, this is "
                                   f"{result.device.slug}: latencies may not be comparable")
    for row in result.rows:
        key = _key(row.model, row.threads, row.xnnpack)
        base = base_rows.get(key)
        if base is None:
            comparison.unmatched.append(key)
            comparison.warnings.append(f"no baseline row for {key}")
            continue
        for group, name in LATENCY_METRICS:
            old = float(base[group][name])
            new = float(getattr(getattr(row, group), name))
            ratio = new / old if old > 0 else float("inf")
            comparison.deltas.append(MetricDelta(key, f"{group}.{name}", old, new, ratio,
                                                 ratio > 1.0 + tolerance))
        if row.accuracy is not None and base.get("accuracy") is not None:
            old = float(base["accuracy"])
            comparison.deltas.append(MetricDelta(
                key, "accuracy", old, row.accuracy,
                row.accuracy / old if old > 0 else float("inf"),
                row.accuracy < old - accuracy_drop))
    return comparison
