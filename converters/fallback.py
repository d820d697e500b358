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

Every candidate starts from the int8 the report holds (:class:`FallbackStart`):
the SavedModel variant (hard-swish rewrite on or off) and the ops kept float that
``--target``'s choice made (:mod:`edgepose.converters.target`), plus its own
layers. Starting from the plain int8 instead would silently undo that choice
(e.g. put back the int8 ADDs XNNPACK refuses, which split the graph).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgepose.converters.debugger import LayerError
from edgepose.converters.modes import FALLBACK_MODE
from edgepose.converters.tflite import quantize_calibrated

if TYPE_CHECKING:
    from edgepose.converters.conversion_report import ModeResult

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
class FallbackStart:
    """The int8 conversion auto-fallback (and its per-layer debugging) starts from.

    The one the report's int8 row holds: ``--target``'s chosen candidate
    (``chosen_for`` names where its speed was measured), else the int8 as converted.
    ``float_nodes`` are output tensor names kept float (a denylist), ``float_ops``
    their count per op type.
    """

    name: str
    hardswish_rewrite: bool
    float_nodes: list[str] = field(default_factory=list)
    float_ops: dict[str, int] = field(default_factory=dict)
    chosen_for: str | None = None  # e.g. "this machine", "Pi 4 (emulated Cortex-A72)"

    def describe(self) -> str:
        """``the int8 chosen for this machine (int8, float ADD x1; hard-swish rewrite off;
        ops kept float: ADD x1)``."""
        which = (f"the int8 chosen for {self.chosen_for} ({self.name}; " if self.chosen_for
                 else f"the {self.name} (")
        kept = ", ".join(f"{op} x{n}" for op, n in sorted(self.float_ops.items())) or "none"
        return (f"{which}hard-swish rewrite {'on' if self.hardswish_rewrite else 'off'}; "
                f"ops kept float: {kept})")


@dataclass
class FallbackResult:
    """What auto-fallback kept in float, which strategy chose it and how each step did.

    ``float_layers`` are the strategy's own layers; the model also keeps the
    start's ``float_nodes`` float (``start``).
    """

    float_layers: list[str]
    steps: list[FallbackStep] = field(default_factory=list)
    within_budget: bool = False
    strategy: str | None = None  # the strategy of the model returned
    start: FallbackStart | None = None

    def summary(self) -> str:
        """One line for the console: how many layers, from which start, within budget."""
        start = f" on top of {self.start.describe()}" if self.start else ""
        return (f"int8-fallback kept {len(self.float_layers)} layer(s) float{start}; "
                f"within budget: {self.within_budget}")


def fallback_result_from_dict(data: Any) -> FallbackResult | None:
    """A :class:`FallbackResult` from its JSON form (an earlier report); None if unreadable."""
    if not isinstance(data, dict):
        return None
    try:
        steps = [FallbackStep(**s) for s in data.get("steps") or []]
        start = data.get("start")
        names = {f.name for f in dataclasses.fields(FallbackStart)}
        start = FallbackStart(**{k: v for k, v in start.items() if k in names}) \
            if isinstance(start, dict) else None
        return FallbackResult(float_layers=list(data.get("float_layers") or []), steps=steps,
                              within_budget=bool(data.get("within_budget")),
                              strategy=data.get("strategy"), start=start)
    except (TypeError, AttributeError):
        return None


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
                  strategies: tuple[str, ...] = STRATEGIES,
                  start: Sequence[str] = ()) -> tuple[FallbackResult, bytes]:
    """Try float sets from both strategies, fewest float layers first, until one fits.

    ``calibrated`` is :func:`~edgepose.converters.tflite.calibrate` of the start's
    SavedModel; ``start``: tensor names the start keeps float, kept float in every
    candidate (and never proposed again). Returns the result (``float_layers``: the
    strategy's own layers) and the model chosen: the first (cheapest) candidate with
    ``val_drop(model) <= max_drop``, else the one with the smallest drop.

    Raises:
        ConversionError: the quantizer refuses a candidate.
    """
    kept = list(dict.fromkeys(start))
    ranked = [e for e in ranked if e.tensor not in set(kept)]
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
        model = quantize_calibrated(calibrated, io, kept + float_layers, compat, source)
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
        return result, quantize_calibrated(calibrated, io, kept, compat, source)
    drop, result.strategy, result.float_layers, model = best
    result.within_budget = drop <= max_drop
    return result, model


def outside_notes(rows: Sequence[ModeResult]) -> list[str]:
    """One line when the int8-fallback row leaves ops outside XNNPACK that int8 does not.

    The int8 row is the fallback's start (both are made by the same conversion): an op
    the fallback adds outside XNNPACK splits the graph the start kept whole, so it
    costs speed beyond its float layers. Empty when either row is missing.
    """
    fallback = next((r for r in rows if r.mode == FALLBACK_MODE), None)
    start = next((r for r in rows if r.mode == "int8"), None)
    if fallback is None or start is None:
        return []
    more = {op: n - start.ops_outside.get(op, 0) for op, n in fallback.ops_outside.items()
            if n > start.ops_outside.get(op, 0)}
    if not more:
        return []
    listed = ", ".join(f"{op} x{n}" for op, n in sorted(more.items()))
    return [f"{FALLBACK_MODE} leaves ops outside XNNPACK that the int8 it started from does "
            f"not ({listed}; {fallback.partitions} partitions vs {start.partitions}): its "
            "float layers split the graph"]


def speed_line(rows: Sequence[ModeResult], target: str) -> list[str]:
    """The fallback section's speed line: int8-fallback beside its start and fp32 on
    ``target`` (ms or instructions, :func:`~edgepose.converters.target.row_speed`)."""
    from edgepose.converters.target import describe_target, format_speed, row_speed

    names = {FALLBACK_MODE: FALLBACK_MODE, "int8": "int8 (its start)", "fp32": "fp32"}
    measured = [(names[r.mode], row_speed(r, target)) for r in rows if r.mode in names]
    shown = [f"{name} {format_speed(speed, target)}" for name, speed in measured if speed]
    if not any(name == FALLBACK_MODE for name, speed in measured if speed):
        return []
    return [f"- speed on {describe_target(target)}: {', '.join(shown)}"]
