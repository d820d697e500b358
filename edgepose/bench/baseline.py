"""Compare a bench result with a stored one (a per-device reference file).

Like pycoral's ``inference_reference_<device>.csv``: keep the JSON that
``edgepose bench --json FILE`` wrote on a device, and later runs on the same
kind of device are compared with it. A row matches on (model file name,
threads, XNNPACK). A latency (p50, invoke and end to end) more than
``tolerance`` above the baseline, or an accuracy lower by more than
``accuracy_drop`` (absolute), is a regression, but only when the difference is
also beyond the noise of the two medians (:func:`noise_floor_ms`): with a few
``--runs`` a difference smaller than the run-to-run spread is "within noise", not
a change. A row of this run with no baseline row fails too (a comparison that
compared nothing is not a pass), unless the caller allows it
(``edgepose bench --allow-missing-baseline``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.bench.results import BenchResult
from edgepose.errors import ConfigError, DataError, RegressionDetected
from edgepose.fileio import read_json

LATENCY_METRICS = (("invoke", "p50_ms"), ("end_to_end", "p50_ms"))
# Fewer timed runs than this in a series: its spread, hence the noise floor, is not
# measured well enough to tell noise from change (said in a warning).
MIN_RUNS_FOR_NOISE = 5
# Two-sided 95 % normal quantile, and the normal quantile of p90 (z at 0.90).
_Z95, _Z90 = 1.959964, 1.281552


@dataclass
class MetricDelta:
    """One metric of one row, against its baseline."""

    row: str  # "model_int8.tflite t=2 xnnpack"
    metric: str  # e.g. "invoke.p50_ms", "accuracy"
    baseline: float
    current: float
    ratio: float  # current / baseline
    regressed: bool
    noise: float = 0.0  # ms a latency difference must exceed to count (0 for accuracy)
    verdict: str = ""  # "regressed", "within noise", "slower", "faster", "same", "ok"


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
                     f"(x{d.ratio:.2f}" + (f", noise {d.noise:.3g} ms)" if d.noise else ")")
                     for d in self.regressions]
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


def median_interval_ms(stats: dict, runs: Sequence[float] | None = None
                       ) -> tuple[float, float]:
    """A ~95 % confidence interval ``(low, high)`` in ms of a series' median latency.

    With the timed runs (``runs``, ms): distribution-free, the order statistics of
    ranks ``floor((n - 1.96 sqrt(n)) / 2)`` and ``ceil(1 + (n + 1.96 sqrt(n)) / 2)``
    (the binomial interval of a median, e.g. Conover, *Practical Nonparametric
    Statistics*, 3.2); latencies on a shared CPU are skewed and bimodal (preemption),
    so no normal law is assumed. For 2 or 3 runs it is the whole min..max spread.
    Without them (an older baseline), or when they do not hold the summary's median
    (an edited file), from the summary: ``p50 +- 1.96 x`` the
    asymptotic standard error of a median, ``sqrt(pi / 2) * sigma / sqrt(n)``, with
    ``sigma = (p90 - p50) / 1.2816``. ``stats`` is a
    :class:`~edgepose.bench.stats.LatencyStats` as a dict.
    """
    median = float(stats["p50_ms"])
    if runs is not None and len(runs) > 0 and min(runs) <= median <= max(runs):
        ordered = np.sort(np.asarray(runs, dtype=np.float64))
        n = ordered.size
        low = max(math.floor((n - _Z95 * math.sqrt(n)) / 2), 1)
        high = min(math.ceil(1 + (n + _Z95 * math.sqrt(n)) / 2), n)
        return float(ordered[low - 1]), float(ordered[high - 1])
    count = max(int(stats.get("count", 1)), 1)
    spread = max(float(stats.get("p90_ms", median)) - median, 0.0)
    half = _Z95 * math.sqrt(math.pi / 2) * (spread / _Z90) / math.sqrt(count)
    return median - half, median + half


def noise_floor_ms(baseline: dict, current: dict, baseline_runs: Sequence[float] | None = None,
                   current_runs: Sequence[float] | None = None) -> float:
    """How far (ms) the current median may move from the baseline's by chance.

    The difference up to which the two medians' intervals (:func:`median_interval_ms`)
    still overlap: for a slower (or equal) current run, the baseline interval's part
    above its median plus the current interval's part below its median; for a faster
    one the other two parts. Inside it, the runs cannot tell the two apart.
    """
    base_low, base_high = median_interval_ms(baseline, baseline_runs)
    cur_low, cur_high = median_interval_ms(current, current_runs)
    base_mid, cur_mid = float(baseline["p50_ms"]), float(current["p50_ms"])
    if cur_mid >= base_mid:
        return max(base_high - base_mid, 0.0) + max(cur_mid - cur_low, 0.0)
    return max(base_mid - base_low, 0.0) + max(cur_high - cur_mid, 0.0)


def latency_verdict(old: float, new: float, noise: float, tolerance: float) -> tuple[bool, str]:
    """``(regressed, verdict)`` for a latency that went from ``old`` to ``new`` ms.

    Regressed when ``new`` is more than ``tolerance`` above ``old`` AND the difference is
    beyond ``noise``; otherwise "within noise" (the difference is inside it), "slower"
    (beyond noise but within tolerance) or "faster".
    """
    ratio = new / old if old > 0 else float("inf")
    if abs(new - old) <= noise:
        return False, "same" if new == old else "within noise"
    if new < old:
        return False, "faster"
    if ratio > 1.0 + tolerance:
        return True, "regressed"
    return False, "slower"


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
        base_cpu = data.get("device", {}).get("cpu_id")
    except (KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"not an edgepose bench result ({exc})", baseline_path) from None
    comparison = BaselineComparison(str(baseline_path), tolerance, available=list(base_rows))
    if base_slug and base_slug != result.device.slug:
        comparison.warnings.append(f"baseline was recorded on {base_slug}, this is "
                                   f"{result.device.slug}: latencies may not be comparable")
    elif base_cpu and result.device.cpu_id and base_cpu != result.device.cpu_id:
        # the same name on other silicon (a VM's "AMD EPYC" on Zen 4 or Zen 5)
        comparison.warnings.append(f"baseline was recorded on another CPU named like this one "
                                   f"({base_cpu}; this is {result.device.cpu_id}): latencies "
                                   "may not be comparable")
    for row in result.rows:
        key = _key(row.model, row.threads, row.xnnpack)
        base = base_rows.get(key)
        if base is None:
            comparison.unmatched.append(key)
            comparison.warnings.append(f"no baseline row for {key}")
            continue
        for group, name in LATENCY_METRICS:
            try:
                old_stats = dict(base[group])
                old = float(old_stats[name])
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(f"not an edgepose bench result (row {key}: {exc})",
                                baseline_path) from None
            new_stats = vars(getattr(row, group))
            new = float(new_stats[name])
            counts = (int(old_stats.get("count", 1)), int(new_stats["count"]))
            if min(counts) < MIN_RUNS_FOR_NOISE and group == "invoke":
                comparison.warnings.append(
                    f"{key}: {min(counts)} timed run(s) in the "
                    f"{'baseline' if counts[0] < counts[1] else 'current run'}: too few to "
                    f"measure the noise; use --runs {MIN_RUNS_FOR_NOISE * 4} or more")
            noise = noise_floor_ms(old_stats, new_stats, base.get(f"{group}_ms") or None,
                                   getattr(row, f"{group}_ms") or None)
            regressed, verdict = latency_verdict(old, new, noise, tolerance)
            ratio = new / old if old > 0 else float("inf")
            comparison.deltas.append(MetricDelta(key, f"{group}.{name}", old, new, ratio,
                                                 regressed, noise, verdict))
        if row.accuracy is not None and base.get("accuracy") is not None:
            old = float(base["accuracy"])
            dropped = row.accuracy < old - accuracy_drop
            comparison.deltas.append(MetricDelta(
                key, "accuracy", old, row.accuracy,
                row.accuracy / old if old > 0 else float("inf"),
                dropped, 0.0, "regressed" if dropped else "ok"))
    return comparison
