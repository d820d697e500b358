"""Warnings that keep a bench table from flattering: a busy machine, a slower "faster" mode.

Both are judged on the machine that measured, in the same run (ratios, never
absolute figures from elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgepose.bench.device import DeviceInfo
    from edgepose.bench.harness import BenchRow

# Other work using half the cores or more makes timings contended: on a 4-core Pi a
# second process on 2 cores doubles a 2-thread invoke. The load average counts
# runnable tasks (Linux: also uninterruptible ones), averaged over one minute.
BUSY_LOAD_FRACTION = 0.5
# A steady-state series whose p90 is this far above its median was interrupted
# (preemption, frequency changes): on a quiet machine p90/p50 stays within ~1.1.
SPREAD_LIMIT = 1.5
# A mode counts as slower than fp32 only beyond timing noise.
SLOWER_MARGIN = 0.05


def busy_warnings(device: DeviceInfo, rows: Sequence[BenchRow]) -> list[str]:
    """Warnings when other work shared the CPU: CPU use just before and after, timing spread.

    Where the OS tells (:func:`~edgepose.bench.device.cpu_busy`, Linux), the CPU that
    every process used in a short window before the run and after it: neither window
    holds this run's own work, and neither lags behind like the load average does
    (a bench right after a training run would otherwise be called busy by its own
    training). Elsewhere the 1-minute load average at the start, and at the end less
    this run's own threads. Either at ``BUSY_LOAD_FRACTION`` of the cores or more, or a
    row whose invoke p90 exceeds ``SPREAD_LIMIT`` x p50, gives a warning that starts
    with ``"machine busy"``.
    """
    warnings = []
    cores = max(device.cores, 1)
    own = max((r.threads or 1 for r in rows), default=1)
    limit = BUSY_LOAD_FRACTION * cores
    before, after = device.before, device.after
    busy_start = before.cpu_busy if before else None
    busy_end = after.cpu_busy if after else None
    if busy_start is not None and busy_end is not None:
        if max(busy_start, busy_end) >= limit:
            warnings.append(f"machine busy: other work used {busy_start:g} of {cores} cores "
                            f"just before the run and {busy_end:g} just after; latencies are "
                            "contended, re-run on a quiet machine before recording them")
    else:
        start = before.load_average if before else None
        end = after.load_average if after else None
        if (start is not None and start >= limit) or (end is not None and end - own >= limit):
            warnings.append(f"machine busy: load average {start} at start, {end} at end on "
                            f"{cores} cores (this run used up to {own} thread(s)); latencies "
                            "are contended, re-run on a quiet machine before recording them")
    for row in rows:
        stats = row.invoke
        if stats.count >= 5 and stats.p50_ms > 0 and stats.p90_ms > SPREAD_LIMIT * stats.p50_ms:
            warnings.append(f"machine busy? {_label(row)}: invoke p90 {stats.p90_ms:.3g} ms is "
                            f"{stats.p90_ms / stats.p50_ms:.1f}x the median {stats.p50_ms:.3g} "
                            f"ms (std {stats.std_ms:.3g} ms)")
    return warnings


def _label(row: BenchRow) -> str:
    threads = "default" if row.threads is None else row.threads
    return f"{Path(row.model).name} t={threads} {'xnnpack' if row.xnnpack else 'no-xnnpack'}"


def slower_than_fp32(rows: Sequence[BenchRow]) -> list[str]:
    """A warning per converted model slower (invoke p50) than its fp32 sibling here.

    Siblings are rows of the same folder, thread count and XNNPACK setting whose
    mode is ``fp32``; the recommendation is the fastest mode measured among them.
    """
    groups: dict[tuple, list[BenchRow]] = {}
    for row in rows:
        groups.setdefault((Path(row.model).parent, row.threads, row.xnnpack), []).append(row)
    warnings = []
    for group in groups.values():
        fp32 = next((r for r in group if r.mode == "fp32"), None)
        if fp32 is None:
            continue
        fastest = min(group, key=lambda r: r.invoke.p50_ms)
        for row in group:
            ratio = row.invoke.p50_ms / max(fp32.invoke.p50_ms, 1e-9)
            if row is not fp32 and ratio > 1.0 + SLOWER_MARGIN:
                warnings.append(f"{_label(row)} ({row.mode}) is {ratio:.2f}x slower than "
                                f"{Path(fp32.model).name} on this machine (invoke p50 "
                                f"{row.invoke.p50_ms:.3g} vs {fp32.invoke.p50_ms:.3g} ms): use "
                                f"{fastest.mode} ({Path(fastest.model).name}) here")
    return warnings
