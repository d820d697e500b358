"""Counters, a latency histogram and an fps gauge, rendered as Prometheus text.

Everything here is fixed-size: counters, histogram buckets, and a ring of the
last frame times for the fps estimate, so a service that runs for months
uses the same memory on day one and day ninety.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

# Seconds; spans a 2 ms int8 model on a desktop to a slow fp32 model on a Pi Zero.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class Histogram:
    """A Prometheus histogram with fixed buckets (not thread-safe on its own)."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS):
        self.buckets = tuple(sorted(buckets))
        self.counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.sum += value
        self.count += 1

    def render(self, name: str) -> list[str]:
        lines, running = [], 0
        for bound, n in zip(self.buckets, self.counts, strict=False):
            running += n
            lines.append(f'{name}_bucket{{le="{bound:g}"}} {running}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum {self.sum:.6f}")
        lines.append(f"{name}_count {self.count}")
        return lines


@dataclass
class MetricsSnapshot:
    """A consistent copy of the counters at one moment."""

    frames_captured: int
    frames_classified: int
    frames_dropped: int
    bad_frames: int
    no_person: int
    source_failures: int
    inference_errors: int
    sink_errors: dict[str, int]
    fps: float
    uptime_s: float


class Metrics:
    """Thread-safe service counters; the capture thread, the loop and the HTTP server share one."""

    def __init__(self, fps_window: int = 120):
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.frames_captured = 0
        self.frames_classified = 0
        self.frames_dropped = 0
        self.bad_frames = 0
        self.no_person = 0
        self.source_failures = 0
        self.inference_errors = 0
        self.sink_errors: dict[str, int] = {}
        self.latency = Histogram()
        self.end_to_end = Histogram()
        self._frame_times: deque[float] = deque(maxlen=fps_window)

    def count(self, name: str, n: int = 1) -> None:
        """Increase one of the integer counters (e.g. ``"bad_frames"``)."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def sink_error(self, sink: str) -> None:
        with self._lock:
            self.sink_errors[sink] = self.sink_errors.get(sink, 0) + 1

    def classified(self, latency_s: float, age_s: float) -> None:
        with self._lock:
            self.frames_classified += 1
            self.latency.observe(latency_s)
            self.end_to_end.observe(age_s)
            self._frame_times.append(time.monotonic())

    def fps(self) -> float:
        """Classified frames per second over the recent window (0 when idle for 5 s)."""
        with self._lock:
            times = list(self._frame_times)
        if len(times) < 2 or time.monotonic() - times[-1] > 5.0:
            return 0.0
        span = times[-1] - times[0]
        return (len(times) - 1) / span if span > 0 else 0.0

    def snapshot(self) -> MetricsSnapshot:
        fps = self.fps()
        with self._lock:
            return MetricsSnapshot(self.frames_captured, self.frames_classified,
                                   self.frames_dropped, self.bad_frames, self.no_person,
                                   self.source_failures, self.inference_errors,
                                   dict(self.sink_errors), fps, time.monotonic() - self.started)

    def render_prometheus(self, healthy: bool = True) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        snap = self.snapshot()
        out: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[str]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(samples)

        p = "edgepose"
        metric(f"{p}_frames_captured_total", "counter", "Frames read from the source.",
               [f"{p}_frames_captured_total {snap.frames_captured}"])
        metric(f"{p}_frames_classified_total", "counter", "Frames that went through the model.",
               [f"{p}_frames_classified_total {snap.frames_classified}"])
        metric(f"{p}_frames_dropped_total", "counter",
               "Frames replaced by a newer one before inference could take them.",
               [f"{p}_frames_dropped_total {snap.frames_dropped}"])
        metric(f"{p}_no_person_total", "counter", "Frames in which the pose model found nobody.",
               [f"{p}_no_person_total {snap.no_person}"])
        errors = [f'{p}_errors_total{{kind="bad_frame"}} {snap.bad_frames}',
                  f'{p}_errors_total{{kind="source"}} {snap.source_failures}',
                  f'{p}_errors_total{{kind="inference"}} {snap.inference_errors}']
        errors += [f'{p}_errors_total{{kind="sink",sink="{name}"}} {n}'
                   for name, n in sorted(snap.sink_errors.items())]
        metric(f"{p}_errors_total", "counter", "Errors by kind; none of them stops the service.",
               errors)
        metric(f"{p}_fps", "gauge", "Classified frames per second, recent window.",
               [f"{p}_fps {snap.fps:.3f}"])
        metric(f"{p}_up", "gauge", "1 when the source delivers frames, 0 while it is reopened.",
               [f"{p}_up {1 if healthy else 0}"])
        metric(f"{p}_uptime_seconds", "gauge", "Seconds since the service started.",
               [f"{p}_uptime_seconds {snap.uptime_s:.3f}"])
        with self._lock:
            latency = self.latency.render(f"{p}_inference_latency_seconds")
            end_to_end = self.end_to_end.render(f"{p}_end_to_end_latency_seconds")
        metric(f"{p}_inference_latency_seconds", "histogram",
               "Pose model plus classifier time per frame.", latency)
        metric(f"{p}_end_to_end_latency_seconds", "histogram",
               "From frame capture to result.", end_to_end)
        return "\n".join(out) + "\n"
