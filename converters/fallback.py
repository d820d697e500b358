"""Selective quantization: keep the worst int8 layers in float until the drop fits a budget.

Layers are ranked by the debugger's rmse/scale; the first 1, 2, 4, ... are kept
float (denylisted) and the candidate is measured on the VALIDATION split -- the
test split stays held out for the report. The loop stops at the first candidate
within budget or when ``max_float_fraction`` of the layers would be float.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from converters.debugger import LayerError
from converters.tflite import quantize_calibrated


@dataclass
class FallbackStep:
    float_layers: int
    val_drop_pct: float  # accuracy points lost vs Keras on the validation split


@dataclass
class FallbackResult:
    """What auto-fallback kept in float and how each step did."""

    float_layers: list[str]
    steps: list[FallbackStep] = field(default_factory=list)
    within_budget: bool = False


def auto_fallback(calibrated: bytes, ranked: list[LayerError],
                  val_drop: Callable[[bytes], float], max_drop: float, io: str = "int8",
                  compat: str | None = None, max_float_fraction: float = 0.5,
                  source: str = "model") -> tuple[FallbackResult, bytes]:
    """Grow the float set (1, 2, 4, ... worst layers) until ``val_drop(model) <= max_drop``.

    Returns the result and the best model found (the first within budget, else the
    one with the smallest drop).
    """
    candidates = [e.tensor for e in ranked]
    limit = max(1, int(len(candidates) * max_float_fraction))
    counts, k = [], 1
    while k < limit:
        counts.append(k)
        k *= 2
    counts.append(limit)
    result = FallbackResult(float_layers=[])
    best: tuple[float, int, bytes] | None = None
    for count in counts:
        model = quantize_calibrated(calibrated, io, candidates[:count], compat, source)
        drop = val_drop(model)
        result.steps.append(FallbackStep(count, round(drop, 3)))
        if best is None or drop < best[0]:
            best = (drop, count, model)
        if drop <= max_drop:
            break
    drop, count, model = best
    result.float_layers = candidates[:count]
    result.within_budget = drop <= max_drop
    return result, model
