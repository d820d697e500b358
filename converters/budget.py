"""The last steps of ``run_conversion``: per-layer debugging, auto-fallback, the drift budget.

:func:`debug_layers_step` measures every int8 layer's own error (and plots it);
:func:`fallback_step` (a :func:`~edgepose.converters.mode_steps.mode_step`, so timed
and written like every mode) keeps layers float until int8 fits ``--max-drop``;
:func:`check_budget` marks the modes over budget and raises after the report is
saved. Both the debugging and the fallback start from the int8 the report holds
(:func:`fallback_start`: ``--target``'s choice of hard-swish rewrite and of ops
kept float), and the fallback model is measured on the target like the int8 row.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from edgepose.converters.conversion_report import ConversionReport, format_points
from edgepose.converters.debugger import layer_errors, plot_layer_errors
from edgepose.converters.fallback import FallbackStart, auto_fallback
from edgepose.converters.mode_steps import ConversionContext, ModeOutput, mode_step
from edgepose.converters.modes import FALLBACK_MODE
from edgepose.converters.target import (
    describe_target,
    measure_rows,
    selection_drop,
    timing_sample,
)
from edgepose.converters.tflite import calibrate
from edgepose.errors import DriftExceeded


def fallback_start(ctx: ConversionContext) -> FallbackStart:
    """The int8 conversion the report's int8 row holds, for the steps that build on it.

    ``--target``'s chosen candidate when it chose (its hard-swish rewrite setting and
    the tensors it keeps float), else the int8 as converted (the conversion's rewrite
    setting, nothing float).
    """
    choice = ctx.report.int8_choice
    chosen = next((c for c in choice.candidates if c.chosen), None) if choice else None
    if chosen is None:
        return FallbackStart("int8 as converted", ctx.rewrite)
    return FallbackStart(chosen.name, chosen.hardswish_rewrite, list(chosen.float_nodes),
                         dict(chosen.float_ops), describe_target(choice.target))


def start_export(ctx: ConversionContext, start: FallbackStart) -> Path:
    """The SavedModel ``start`` was converted from: rewritten or not, as it was.

    ``ctx.exports.get(True)`` is the rewritten export only when the conversion
    rewrites; a start without the rewrite is the float modes' export.
    """
    return ctx.exports.get(start.hardswish_rewrite)


def debug_layers_step(ctx: ConversionContext) -> None:
    """Per-layer quantization errors into ``ctx.report.layer_errors``; plot with ``debug_layers``.

    The errors are those of the int8 the report holds (:func:`fallback_start`: the
    same export, its float ops not ranked). The plot is ``quant_debug.png`` in the
    model's folder (its path joins ``ctx.files``). Raises ModelError when the
    calibrated model cannot be built.
    """
    ctx.progress("per-layer quantization debugging")
    src, start = ctx.source, fallback_start(ctx)
    ctx.report.layer_errors = layer_errors(start_export(ctx, start), ctx.calibration,
                                           ctx.options.compat, source=src.model_path,
                                           float_nodes=start.float_nodes)
    if ctx.options.debug_layers:
        ctx.files.append(str(plot_layer_errors(ctx.report.layer_errors,
                                               src.out_dir / "quant_debug.png")))


def needs_fallback(ctx: ConversionContext) -> bool:
    """True when auto-fallback is on and int8 lost more than ``max_drop`` points."""
    if not ctx.options.auto_fallback:
        return False
    drop = ctx.report.mode("int8").drop_pct
    return drop is not None and drop > ctx.options.max_drop


def validation_drop(ctx: ConversionContext) -> Callable[[bytes], float]:
    """A function: candidate ``.tflite`` bytes -> accuracy points lost vs Keras (0..100).

    Points LOST: samples Keras classifies right that the candidate gets wrong, never
    offset by the ones it happens to fix (:mod:`~edgepose.converters.selection`: the
    net difference cancels to 0 for a candidate that disagrees with Keras on 9%).
    Measured on the validation split; without one, on the test split, and the
    report's ``settings["fallback_selection_split"]`` says which.
    """
    # one owner of the selection split and its Keras predictions: the --target step's
    split, drop = selection_drop(ctx)  # labelled: the int8 drop was measured on it
    ctx.report.settings["fallback_selection_split"] = split

    def val_drop(data: bytes) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "candidate.tflite"
            path.write_bytes(data)
            return drop(path)

    return val_drop


@mode_step
def fallback_step(ctx: ConversionContext, name: str,
                  val_drop: Callable[[bytes], float]) -> ModeOutput:
    """int8 over budget: keep layers float (worst-ranked or a prefix) until the val drop fits.

    Starts from :func:`fallback_start` (its export, its float ops in every
    candidate). ``name`` is :data:`FALLBACK_MODE`; ``val_drop`` from
    :func:`validation_drop`. The row's ``float_layers`` and the manifest's are every
    tensor kept float (the start's, then the strategy's); the manifest also records
    the start (``fallback_start``, ``hardswish_rewrite``, ``float_ops``, ``float_nodes``).
    Raises ModelError when the calibrated model cannot be built or quantized.
    """
    options, report, start = ctx.options, ctx.report, fallback_start(ctx)
    ctx.progress(f"auto-fallback: starting from {start.describe()}")
    calibrated = calibrate(start_export(ctx, start), ctx.calibration, options.compat,
                           source=ctx.source.model_path)
    result, data = auto_fallback(calibrated, report.layer_errors, val_drop, options.max_drop,
                                 options.io, options.compat, source=str(ctx.source.model_path),
                                 start=start.float_nodes)
    result.start = start
    ctx.progress(f"auto-fallback: {len(result.steps)} candidate(s) tried, chose "
                 f"{len(result.float_layers)} float layer(s) by {result.strategy} "
                 f"(within budget on {report.settings['fallback_selection_split']}: "
                 f"{result.within_budget})")
    every = list(dict.fromkeys(start.float_nodes + result.float_layers))
    settings = dict(ctx.settings, mode=name, io=options.io, calibration=report.calibration,
                    float_layers=every, fallback_strategy=result.strategy,
                    fallback_start=start.name, hardswish_rewrite=start.hardswish_rewrite,
                    float_ops=dict(start.float_ops), float_nodes=list(start.float_nodes))
    return ModeOutput(data, settings, every, fallback=result)


def run_fallback(ctx: ConversionContext) -> None:
    """The auto-fallback mode: announce the int8 loss, :func:`fallback_step`, then measure.

    The new row is measured on ``--target`` like the others (on a Pi, instructions
    per invoke, :func:`~edgepose.converters.target.measure_rows`), so the report's
    slower-than-fp32 flag and fallback section judge it where the int8 was judged.

    Raises:
        ModelError: the calibrated model cannot be built or quantized.
        RuntimeNotAvailable: a Pi target whose emulated run fails.
    """
    val_drop = validation_drop(ctx)
    ctx.progress(f"auto-fallback: int8 lost {ctx.report.mode('int8').drop_pct:.2f} points, "
                 f"budget {ctx.options.max_drop}")
    ctx.report.fallback = fallback_step(ctx, FALLBACK_MODE, val_drop).fallback
    measure_rows(ctx.report, ctx.options.target, timing_sample(ctx.reference.x), ctx.progress)


def over_budget(report: ConversionReport, max_drop: float | None) -> list[str]:
    """The modes that lost more than ``max_drop`` accuracy points (none without a budget).

    ``int8`` is not counted when its auto-fallback replacement fits the budget.
    """
    if max_drop is None:
        return []
    failed = [m.mode for m in report.modes if m.drop_pct is not None and m.drop_pct > max_drop]
    if report.fallback is not None and report.fallback.within_budget and "int8" in failed:
        failed.remove("int8")  # replaced by int8-fallback, which fits
    return failed


def check_budget(report: ConversionReport, max_drop: float | None, where: Path) -> None:
    """Refuse a conversion whose ``report.failed_modes`` is not empty (report already saved).

    Raises:
        DriftExceeded: some mode lost more than ``max_drop`` accuracy points on the
            test split; names the modes and the worst drop, ``where`` is the report.
    """
    if not report.failed_modes:
        return
    worst = max((report.mode(m) for m in report.failed_modes), key=lambda m: m.drop_pct)
    raise DriftExceeded(f"{', '.join(report.failed_modes)} lost more than {max_drop} "
                        f"accuracy points on {report.drift_data} ({worst.mode}: "
                        f"{worst.drop_pct:.2f}); {within_budget(report)}", where)


def within_budget(report: ConversionReport) -> str:
    """What a refused conversion still offers: ``within it: fp16 (0.00), dynamic (0.37)``.

    The converted modes not in ``report.failed_modes`` whose drop was measured, in
    report order, with their drop in points; when none (e.g. only int8 was asked
    for), the lighter modes to try instead.
    """
    failed = set(report.failed_modes)
    kept = [f"{m.mode} ({format_points(m.drop_pct)})" for m in report.modes
            if m.mode not in failed and m.drop_pct is not None]
    if kept:
        return f"within it: {', '.join(kept)}"
    return "no converted mode is within it; try --fp16 or --dynamic (float activations)"
