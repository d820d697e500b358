"""Selective quantization: keep int8 layers in float until the drop fits a budget.

Two strategies propose float sets, and every candidate is measured on the
VALIDATION split -- the test split stays held out for the report:

- ``ranked``: the 1, 2, 4, ... worst layers by the debugger's rmse/scale (a
  layer's OWN error, measured on dequantized inputs);
- ``prefix``: every op up to the k-th weighted op (conv, depthwise, dense) in
  execution order, k = 1, 2, 3, 5, 8, ... Per-layer ranking misses error that
  starts early and is amplified downstream (e.g. a stem with large folded
  BatchNorm gains, or one huge-range channel that crushes the per-tensor scale
  of its neighbours): each op there has an ordinary own error, yet keeping the
  first block float is what recovers the accuracy.

Candidates are tried from the fewest float layers up (ranked first on a tie),
so the first one within budget is the cheapest; the search stops there or when
``max_float_fraction`` of the layers would be float.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from edgepose.converters.debugger import LayerError
from edgepose.converters.tflite import quantize_calibrated

STRATEGIES = ("ranked", "prefix")
# Ops whose weights (and folded BatchNorm) make quantization error; the prefix
# grows by these, taking the cheap elementwise ops between them along.
WEIGHTED_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                          "TRANSPOSE_CONV", "CONV_3D", "BATCH_MATMUL"})


@dataclass
class FallbackStep:
    float_layers: int
    val_drop_pct: float  # accuracy points lost vs Keras on the validation split
    strategy: str = "ranked"  # ranked | prefix


@dataclass
class FallbackResult:
    """What auto-fallback kept in float, which strategy chose it and how each step did."""

    float_layers: list[str]
    steps: list[FallbackStep] = field(default_factory=list)
    within_budget: bool = False
    strategy: str | None = None  # the strategy of the model returned


def execution_order(model: bytes) -> list[tuple[str, str]]:
    """(output tensor name, op name) of every op of a .tflite model, in execution order."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return [(names[op["outputs"][0]], op["op_name"])
            for op in interpreter._get_ops_details() if len(op["outputs"])]


def _growing_counts(limit: int, first: tuple[int, ...]) -> list[int]:
    """``first`` then each count the sum of the previous two, capped at ``limit``."""
    counts = [c for c in first if c < limit]
    while len(counts) >= 2 and counts[-1] + counts[-2] < limit:
        counts.append(counts[-1] + counts[-2])
    return counts + [limit]


def ranked_candidates(ranked: list[LayerError], limit: int) -> list[list[str]]:
    """The 1, 2, 4, ... worst layers, up to ``limit``."""
    names = [e.tensor for e in ranked]
    counts, k = [], 1
    while k < limit:
        counts.append(k)
        k *= 2
    counts.append(limit)
    return [names[:count] for count in counts]


def prefix_candidates(order: list[tuple[str, str]], quantizable: list[str],
                      limit: int) -> list[list[str]]:
    """Every quantizable op up to the k-th weighted op (k = 1, 2, 3, 5, 8, ...).

    ``order`` is :func:`execution_order` of the calibrated model; only tensors
    the debugger reported (``quantizable``) can be denylisted. Prefixes longer
    than ``limit`` ops are not proposed.
    """
    known = set(quantizable)
    ops = [(name, op) for name, op in order if name in known]
    ends = [i + 1 for i, (_, op) in enumerate(ops) if op in WEIGHTED_OPS]
    if not ends:
        return []
    candidates = []
    for k in _growing_counts(len(ends), (1, 2, 3)):
        prefix = [name for name, _ in ops[:ends[k - 1]]]
        if len(prefix) > limit:
            break
        candidates.append(prefix)
    return candidates


def auto_fallback(calibrated: bytes, ranked: list[LayerError],
                  val_drop: Callable[[bytes], float], max_drop: float, io: str = "int8",
                  compat: str | None = None, max_float_fraction: float = 0.5,
                  source: str = "model",
                  strategies: tuple[str, ...] = STRATEGIES) -> tuple[FallbackResult, bytes]:
    """Try float sets from both strategies, fewest float layers first, until one fits.

    Returns the result and the model chosen: the first (cheapest) candidate with
    ``val_drop(model) <= max_drop``, else the one with the smallest drop.
    """
    limit = max(1, int(len(ranked) * max_float_fraction))
    proposals: list[tuple[int, int, str, list[str]]] = []
    if "ranked" in strategies:
        proposals += [(len(c), 0, "ranked", c) for c in ranked_candidates(ranked, limit)]
    if "prefix" in strategies:
        order = execution_order(calibrated)
        proposals += [(len(c), 1, "prefix", c) for c in
                      prefix_candidates(order, [e.tensor for e in ranked], limit)]
    proposals.sort(key=lambda p: (p[0], p[1]))
    result = FallbackResult(float_layers=[])
    best: tuple[float, str, list[str], bytes] | None = None
    tried: set[tuple[str, ...]] = set()
    for count, _, strategy, float_layers in proposals:
        key = tuple(sorted(float_layers))
        if key in tried:
            continue
        tried.add(key)
        model = quantize_calibrated(calibrated, io, float_layers, compat, source)
        # Accuracy differences are float sums of 1/N steps (100 * (0.95 - 0.90) is
        # 5.000000000000004): compare at the precision the report prints, so a drop
        # shown as 5.0 meets a budget of 5.0.
        drop = round(val_drop(model), 3)
        result.steps.append(FallbackStep(count, drop, strategy))
        if best is None or drop < best[0]:
            best = (drop, strategy, float_layers, model)
        if drop <= max_drop:
            break
    if best is None:
        return result, quantize_calibrated(calibrated, io, [], compat, source)
    drop, result.strategy, result.float_layers, model = best
    result.within_budget = drop <= max_drop
    return result, model
