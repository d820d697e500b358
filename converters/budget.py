"""The last steps of ``run_conversion``: per-layer debugging, auto-fallback, the drift budget.

:func:`debug_layers_step` measures every int8 layer's own error (and plots it);
:func:`fallback_step` (a :func:`~edgepose.converters.mode_steps.mode_step`, so timed
and written like every mode) keeps layers float until int8 fits ``--max-drop``;
:func:`check_budget` marks the modes over budget and raises after the report is
saved.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from edgepose.converters.conversion_report import ConversionReport
from edgepose.converters.debugger import layer_errors, plot_layer_errors
from edgepose.converters.fallback import auto_fallback
from edgepose.converters.mode_steps import ConversionContext, ModeOutput, mode_step
from edgepose.converters.model_outputs import keras_probabilities, tflite_probabilities
from edgepose.converters.modes import FALLBACK_MODE
from edgepose.converters.selection import lost_points
from edgepose.converters.tflite import calibrate
from edgepose.errors import DriftExceeded
from edgepose.rundir import load_inputs
from edgepose.runtime.classifier import Classifier


def debug_layers_step(ctx: ConversionContext) -> None:
    """Per-layer quantization errors into ``ctx.report.layer_errors``; plot with ``debug_layers``.

    The plot is ``quant_debug.png`` in the model's folder (its path joins
    ``ctx.files``). Raises ModelError when the calibrated model cannot be built.
    """
    ctx.progress("per-layer quantization debugging")
    src = ctx.source
    ctx.report.layer_errors = layer_errors(ctx.exports.get(True), ctx.calibration,
                                           ctx.options.compat, source=src.model_path)
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
    src, report = ctx.source, ctx.report
    val = src.splits.samples("val") if src.splits is not None else []
    if val:
        x_val, y_val = load_inputs(src.splits, val, src.config)
    else:  # no validation split: choose on the test split and say so in the report
        x_val, y_val = ctx.reference.x, ctx.reference.y
    report.settings["fallback_selection_split"] = "val" if val else "test"
    keras_val = keras_probabilities(ctx.model, ctx.contract.normalize(x_val))

    def val_drop(data: bytes) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "candidate.tflite"
            path.write_bytes(data)
            probs = tflite_probabilities(Classifier.from_file(
                path, num_threads=1, stated=ctx.contract.as_stated()), x_val)
        return lost_points(keras_val.argmax(1), probs.argmax(1), y_val)

    return val_drop


@mode_step
def fallback_step(ctx: ConversionContext, name: str,
                  val_drop: Callable[[bytes], float]) -> ModeOutput:
    """int8 over budget: keep layers float (worst-ranked or a prefix) until the val drop fits.

    ``name`` is :data:`FALLBACK_MODE`; ``val_drop`` from :func:`validation_drop`.
    Raises ModelError when the calibrated model cannot be built or quantized.
    """
    options, report = ctx.options, ctx.report
    calibrated = calibrate(ctx.exports.get(True), ctx.calibration, options.compat,
                           source=ctx.source.model_path)
    result, data = auto_fallback(calibrated, report.layer_errors, val_drop, options.max_drop,
                                 options.io, options.compat, source=str(ctx.source.model_path))
    ctx.progress(f"auto-fallback: {len(result.steps)} candidate(s) tried, chose "
                 f"{len(result.float_layers)} float layer(s) by {result.strategy} "
                 f"(within budget on {report.settings['fallback_selection_split']}: "
                 f"{result.within_budget})")
    settings = dict(ctx.settings, mode=name, io=options.io, calibration=report.calibration,
                    float_layers=result.float_layers, fallback_strategy=result.strategy)
    return ModeOutput(data, settings, result.float_layers, fallback=result)


def run_fallback(ctx: ConversionContext) -> None:
    """The auto-fallback mode: announce the int8 loss, then :func:`fallback_step`."""
    val_drop = validation_drop(ctx)
    ctx.progress(f"auto-fallback: int8 lost {ctx.report.mode('int8').drop_pct:.2f} points, "
                 f"budget {ctx.options.max_drop}")
    ctx.report.fallback = fallback_step(ctx, FALLBACK_MODE, val_drop).fallback


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
                        f"{worst.drop_pct:.2f})", where)
