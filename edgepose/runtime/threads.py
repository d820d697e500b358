"""Choose the interpreter's thread count by timing the model on this device (``--threads auto``).

Left to itself the TFLite interpreter runs XNNPACK on one thread: a Pi 5 running
MobileNetV2-224 leaves three of its four cores idle. More threads are not always
faster either: on 2 vCPUs edgepose's latency matrix measured MobileNetV3-Small-96 fp32 at
0.33 ms on one thread and 0.53 ms on two (``benchmarks/results/*/latency_matrix.md``),
because a small model loses more to handing work between threads than it gains.
Which count wins depends on the model and the device, so :func:`choose_threads` times
it: 1, 2, 4, ... up to the cores this process may use, interleaved in rounds (the
order reversed every other round, so a change of clock or load hits all alike), and
keeps the fewest threads within :data:`MIN_GAIN` of the fastest.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.runtime.interpreter import load_interpreter

# More threads must beat fewer by at least this share of the faster time to be chosen:
# edgepose's own margin. Below it the difference is within run-to-run spread on a shared
# machine (the latency matrix's block p50s differ by 1-5%), and every extra thread busies
# a core the camera, the HTTP server and the OS also need.
MIN_GAIN = 0.10
ROUNDS = 3
SECONDS = 0.6  # timing budget over all rounds and candidates, after one warm-up invoke each
MIN_INVOKES = 2  # per candidate and round, whatever the budget
AUTO = "auto"  # the --threads value that asks for choose_threads


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count chosen and the median invoke time (ms) of each count timed."""

    threads: int
    p50_ms: dict[int, float] = field(default_factory=dict)

    def describe(self) -> str:
        """One line, e.g. ``auto: 1 -> 6.72 ms, 2 -> 3.30 ms; 2 threads``."""
        if not self.p50_ms:
            return f"auto: 1 core available; {self.threads} thread"
        timed = ", ".join(f"{n} -> {ms:.2f} ms" for n, ms in sorted(self.p50_ms.items()))
        return f"auto: {timed}; {self.threads} thread{'s' if self.threads > 1 else ''}"


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask, e.g. under taskset or a cgroup)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def thread_candidates(cores: int) -> list[int]:
    """1, 2, 4, ... below ``cores``, then ``cores`` itself: ``6`` gives ``[1, 2, 4, 6]``."""
    counts, n = [], 1
    while n < cores:
        counts.append(n)
        n *= 2
    return [*counts, max(1, cores)]


def pick_threads(p50_ms: dict[int, float], min_gain: float = MIN_GAIN) -> int:
    """The fewest threads whose median time is within ``min_gain`` of the fastest's.

    ``{1: 6.72, 2: 3.30}`` -> 2; ``{1: 0.33, 2: 0.53}`` -> 1; ``{1: 1.00, 2: 0.95}`` -> 1
    (5% is within the margin).
    """
    fastest = min(p50_ms.values())
    return min(n for n, ms in p50_ms.items() if ms <= fastest * (1 + min_gain))


def choose_threads(model_path: str | Path, use_xnnpack: bool = True, prefer: str | None = None,
                   cores: int | None = None, rounds: int = ROUNDS,
                   seconds: float = SECONDS) -> ThreadChoice:
    """Time ``model_path`` at each of :func:`thread_candidates` and choose (:func:`pick_threads`).

    Each count gets its own interpreter (loaded as the caller will load it,
    ``use_xnnpack`` and ``prefer`` alike) fed seeded random inputs of the model's
    own shapes and types; the invoke times of all rounds give each count's median.
    With one core available nothing is timed. Takes about ``seconds`` plus one
    load and warm-up invoke per count; a slow model gets :data:`MIN_INVOKES` per
    count and round however long they take.

    Raises:
        ModelError: the model cannot be loaded (as :func:`load_interpreter`).
    """
    counts = thread_candidates(cores if cores is not None else available_cores())
    if len(counts) == 1:
        return ThreadChoice(counts[0])
    rng = np.random.default_rng(0)
    interpreters = {}
    for n in counts:
        interpreter, _ = load_interpreter(model_path, n, use_xnnpack, prefer)
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], _random_input(detail, rng))
        interpreter.invoke()  # warm-up: first-invoke costs (packing weights) are not steady state
        interpreters[n] = interpreter
    samples: dict[int, list[float]] = {n: [] for n in counts}
    per_turn = seconds / (rounds * len(counts))
    for round_index in range(rounds):
        for n in counts if round_index % 2 == 0 else counts[::-1]:
            invoke, spent, done = interpreters[n].invoke, 0.0, 0
            while done < MIN_INVOKES or spent < per_turn:
                start = time.perf_counter()
                invoke()
                elapsed = time.perf_counter() - start
                samples[n].append(elapsed)
                spent, done = spent + elapsed, done + 1
    p50 = {n: round(float(np.median(times)) * 1e3, 3) for n, times in samples.items()}
    return ThreadChoice(pick_threads(p50), p50)


def _random_input(detail: dict, rng: np.random.Generator) -> np.ndarray:
    """Seeded values of the input's shape and type: integers over the type's range, floats
    in 0..1 (the work of a convolution does not depend on the values)."""
    dtype = np.dtype(detail["dtype"])
    shape = tuple(int(d) for d in detail["shape"])
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.random(shape).astype(dtype)


def resolve_threads(threads: int | str | None, model_path: str | Path, use_xnnpack: bool = True,
                    prefer: str | None = None) -> tuple[int | None, ThreadChoice | None]:
    """A ``--threads`` value as the interpreter takes it: ``"auto"`` timed (:func:`choose_threads`).

    Returns ``(threads, choice)``: ``choice`` is None unless ``threads`` was ``"auto"``;
    an int or None (the runtime's default, one XNNPACK thread) passes through.

    Raises:
        ModelError: ``"auto"`` and the model cannot be loaded.
    """
    if threads != AUTO:
        return threads, None  # type: ignore[return-value]
    choice = choose_threads(model_path, use_xnnpack, prefer)
    return choice.threads, choice
