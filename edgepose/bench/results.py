"""What one ``edgepose bench`` call measured: a row per model x XNNPACK x threads, and how.

Plain dataclasses, written to JSON/CSV/Markdown by :mod:`edgepose.bench.bench_report`.
Latencies are milliseconds; memory figures are MiB.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgepose.bench.any_model import TensorInfo
from edgepose.bench.device import DeviceInfo
from edgepose.bench.stats import LatencyStats
from edgepose.runtime.drift_stats import DriftStats


@dataclass
class BenchRow:
    """One model run with one XNNPACK setting and thread count."""

    model: str
    mode: str  # manifest mode, else guessed from the file name, else "?"
    size_bytes: int
    threads: int | None
    xnnpack: bool
    delegation: str
    load_ms: float
    invoke: LatencyStats
    end_to_end: LatencyStats
    end_to_end_input: str  # "files" (decode included) or "arrays" (no decode)
    peak_rss_mb: float  # process peak so far (monotonic over the rows of one run)
    load_rss_mb: float | None  # RSS growth while loading this model
    outputs: int  # number of output tensors
    first_invoke_ms: float | None = None  # the first invoke after loading
    warmup_invoke_ms: float | None = None  # mean of the other warm-up invokes
    kind: str = "classifier"  # or "any model" (timed only, see any_model)
    tensors: list[TensorInfo] = field(default_factory=list)  # every input and output
    accuracy: float | None = None
    drift: DriftStats | None = None
    reference: str | None = None  # what the drift is measured against
    invoke_ms: list[float] = field(default_factory=list, repr=False)
    end_to_end_ms: list[float] = field(default_factory=list, repr=False)


@dataclass
class BenchSettings:
    """How the benchmark was run."""

    warmup: int
    runs: int
    threads: list[int | None]
    xnnpack: list[bool]
    data: str | None  # class-folder directory, or "<run>/splits.json:test"
    samples: int  # labelled samples used for accuracy (0 = latency only)
    sample: str | None = None  # "90 of 539 samples (stratified by class, seed 0) from ..."
    clock: str = "time.perf_counter_ns"


@dataclass
class BenchResult:
    """Everything one ``edgepose bench`` call measured, and where."""

    device: DeviceInfo
    settings: BenchSettings
    rows: list[BenchRow]
    warnings: list[str] = field(default_factory=list)
    skipped: list[SkippedInput] = field(default_factory=list)  # samples that could not be read
    machine_busy: bool = False  # a "machine busy" warning was given: do not record the timings


@dataclass
class SkippedInput:
    """A sample left out, and why (one line)."""

    file: str
    reason: str
