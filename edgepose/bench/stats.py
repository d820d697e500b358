"""Latency statistics from per-sample timings in nanoseconds.

Timings come from ``time.perf_counter_ns`` (monotonic, integer, unaffected by
clock adjustments); callers may inject another clock for tests. Warm-up
samples are run but never reach these functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Clock = Callable[[], int]


@dataclass
class LatencyStats:
    """Summary of one series of per-sample latencies, in milliseconds."""

    count: int
    mean_ms: float
    std_ms: float  # population standard deviation
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    throughput_per_s: float  # samples per second at the mean latency, one at a time


def latency_stats(samples_ns: Sequence[int]) -> LatencyStats:
    """Mean, std, min, p50/p90/p99 (linear interpolation), max and throughput.

    Raises:
        ValueError: no samples: there is nothing to summarise.
    """
    if len(samples_ns) == 0:
        raise ValueError("no latency samples")
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    mean = float(ms.mean())
    return LatencyStats(count=int(ms.size), mean_ms=mean, std_ms=float(ms.std()),
                        min_ms=float(ms.min()), p50_ms=float(p50), p90_ms=float(p90),
                        p99_ms=float(p99), max_ms=float(ms.max()),
                        throughput_per_s=1000.0 / mean if mean > 0 else float("inf"))


def time_calls(fn: Callable[[int], object], runs: int, warmup: int = 0,
               clock: Clock = time.perf_counter_ns) -> list[int]:
    """Call ``fn(i)`` ``warmup`` times untimed, then ``runs`` times; return each duration (ns)."""
    for i in range(warmup):
        fn(i)
    durations = []
    for i in range(runs):
        start = clock()
        fn(i)
        durations.append(clock() - start)
    return durations


@dataclass
class Phases:
    """Timings of one series split as TFLite's ``benchmark_model`` reports them (ns).

    ``first`` is the very first call after loading (lazy allocation and delegate
    set-up land here: what a service that restarts feels), ``warmup`` the next
    calls that are run but excluded from the statistics, ``runs`` the steady state.
    """

    first: int
    warmup: list[int]
    runs: list[int]


def time_phases(fn: Callable[[int], object], runs: int, warmup: int = 0,
                clock: Clock = time.perf_counter_ns) -> Phases:
    """Time the first call, ``warmup`` more calls, then ``runs`` calls of ``fn(i)``.

    The first call counts as the first warm-up call when ``warmup >= 1`` (so the
    number of untimed-for-statistics calls stays ``warmup``); with ``warmup=0``
    it is an extra call.
    """
    def timed(i: int) -> int:
        start = clock()
        fn(i)
        return clock() - start

    first = timed(0)
    rest = [timed(i) for i in range(1, max(warmup, 1))] if warmup else []
    return Phases(first, rest, [timed(i) for i in range(runs)])
