"""``convert_run``: a run directory (or a .keras file) -> TFLite models, manifests, drift report.

One export per conversion (two when the hard-swish rewrite is on: float modes
keep the original graph, integer modes get the rewritten one), then every mode
converts from that SavedModel, is written atomically with its manifest, run on
the held-out test split with the device-side :class:`Classifier`, and compared
with the Keras outputs on the same inputs.
"""

from __future__ import annotations

import io as _io
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.converters import calibration as calib
from edgepose.converters.conversion_report import ConversionReport, ModeResult
from edgepose.converters.debugger import layer_errors, plot_layer_errors
from edgepose.converters.export import (
    export_saved_model,
    input_shape,
    load_keras_model,
    training_only_layers,
)
from edgepose.converters.fallback import auto_fallback
from edgepose.converters.hardswish import count_hard_swish, rewrite_hard_swish
from edgepose.converters.manifest_writer import build_manifest, versions
from edgepose.converters.metadata import add_metadata
from edgepose.converters.model_outputs import (
    device_classifier,
    keras_probabilities,
    median_latency_ms,
    tflite_probabilities,
)
from edgepose.converters.modes import DEFAULT_MODES, FALLBACK_MODE, MODES
from edgepose.converters.options import ConvertOptions
from edgepose.converters.source import (
    Source,
    infer_config,
    resolve_source,
    source_contract,
)
from edgepose.converters.target import target_step
from edgepose.converters.tflite import calibrate, convert_mode
from edgepose.errors import ConfigError, DriftExceeded, ModelError
from edgepose.fileio import atomic_path, sha256_file, write_bytes
from edgepose.rundir import load_inputs
from edgepose.runtime.classifier import Classifier
from edgepose.runtime.drift_stats import compare_outputs
from edgepose.runtime.input_contract import InputContract, StatedContract

Progress = Callable[[str], None]


def _layer_names(model) -> list[str]:
    names = []
    for layer in model.layers:
        names.append(layer.name)
        if hasattr(layer, "layers"):
            names += _layer_names(layer)
    return names


def _float_weight_bytes(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.weights) * 4)


@dataclass
class _Context:
    source: Source
    model: Any
    labels: list[str]
    sha256: str
    x_test: np.ndarray
    y_test: np.ndarray
    keras_test: np.ndarray
    settings: dict[str, Any]
    weight_bytes: int
    progress: Progress
    contract: InputContract
    files: list[str] = field(default_factory=list)


def _write_mode(ctx: _Context, mode: str, data: bytes, seconds: float,
                settings: dict[str, Any], float_layers: Sequence[str] = ()) -> ModeResult:
    """Write model + manifest atomically, then measure them as the device will run them."""
    from edgepose.runtime.delegation import inspect_model

    folder, stem = ctx.source.folder, ctx.source.stem
    model_path, manifest_path = folder.tflite_path(mode, stem), folder.manifest_path(mode, stem)
    config = ctx.source.config
    preprocessing = config.get("preprocessing") if config["task"] == "image" else None
    size = (int(preprocessing["height"]), int(preprocessing["width"])) if preprocessing else None
    # labels and the input contract also travel inside the model, as TFLite Metadata
    data = add_metadata(data, model_path.stem, ctx.labels, ctx.contract, size)
    with atomic_path(model_path) as tmp_model, atomic_path(manifest_path) as tmp_manifest:
        tmp_model.write_bytes(data)
        manifest = build_manifest(
            tmp_model, mode, task=config["task"], labels=ctx.labels,
            preprocessing=preprocessing,
            keypoint_layout=config.get("keypoint_layout"), source_model=ctx.source.model_path,
            source_sha256=ctx.sha256, settings=settings, contract=ctx.contract)
        manifest.save(tmp_manifest)
        classifier = device_classifier(tmp_model, tmp_manifest)  # loaded once per mode
        drift = None
        if len(ctx.x_test):
            probs = tflite_probabilities(classifier, ctx.x_test)
            drift = compare_outputs(ctx.keras_test, probs, ctx.y_test, ctx.labels)
        sample = ctx.x_test[0] if len(ctx.x_test) else np.zeros(
            manifest.input.shape[1:], dtype=np.float32)
        latency = median_latency_ms(classifier, sample)
        del classifier
        delegation = inspect_model(tmp_model, num_threads=1, use_xnnpack=True)
    ctx.files += [str(model_path), str(manifest_path)]
    result = ModeResult(
        mode=mode, path=str(model_path), size_bytes=len(data),
        size_ratio=round(len(data) / max(ctx.weight_bytes, 1), 4),
        conversion_seconds=round(seconds, 2), input_dtype=manifest.input.dtype,
        output_dtype=manifest.output.dtype, drift=drift, latency_ms=round(latency, 3),
        partitions=delegation.partitions, delegated_nodes=delegation.delegated_nodes,
        total_nodes=delegation.total_nodes, ops_outside=dict(delegation.ops_outside),
        delegation=delegation.summary(), float_layers=list(float_layers))
    ctx.progress(f"{mode}: {len(data) / 1024:.0f} KB, "
                 + (f"accuracy {100 * drift.accuracy:.2f}%, " if drift else "")
                 + f"{result.delegation}")
    return result


def convert_run(source: str | Path, modes: Sequence[str] = DEFAULT_MODES, *,
                io: str = "int8", compat: str | None = None, calib_samples: int = 200,
                calib_data: str | Path | None = None, seed: int = 0,
                max_drop: float | None = None, debug_layers: bool = False,
                auto_fallback_enabled: bool = False, hardswish_rewrite: str = "auto",
                progress: Progress | None = None,
                stated: StatedContract | None = None) -> ConversionReport:
    """Convert ``source`` (run directory or .keras file) in ``modes`` and report the drift.

    The keyword form of :func:`run_conversion`: the options are those of
    :class:`~edgepose.converters.options.ConvertOptions` (``auto_fallback_enabled``
    is its ``auto_fallback``).
    """
    options = ConvertOptions(io=io, compat=compat, calib_samples=calib_samples,
                             calib_data=calib_data, seed=seed, max_drop=max_drop,
                             debug_layers=debug_layers, auto_fallback=auto_fallback_enabled,
                             hardswish_rewrite=hardswish_rewrite, stated=stated)
    return run_conversion(source, modes, options, progress)


@dataclass
class _Reference:
    """The Keras model's outputs on the test split: what every mode's drift is measured on.

    ``x``: ``N x ...`` raw inputs as the device sees them; ``y``: ``N`` labels;
    ``probabilities``: ``N x classes`` float32 Keras outputs on ``contract.normalize(x)``.
    """

    x: np.ndarray
    y: np.ndarray
    probabilities: np.ndarray


def _reference_outputs(src: Source, model, contract: InputContract,
                       shape: tuple[int, ...]) -> _Reference:
    """Run the Keras model on the test split; save ``reference_outputs.npz`` for bench."""
    x_test = np.zeros((0, *shape), dtype=np.float32)
    y_test = np.zeros((0,), dtype=np.int64)
    test_paths: list[str] = []
    if src.splits is not None and src.splits.samples("test"):
        test = src.splits.samples("test")
        x_test, y_test = load_inputs(src.splits, test, src.config)
        test_paths = [s.path for s in test]
    keras_test = keras_probabilities(model, contract.normalize(x_test))
    if len(x_test):
        buffer = _io.BytesIO()
        np.savez(buffer, paths=np.array(test_paths), probabilities=keras_test, labels=y_test)
        write_bytes(src.folder.reference_outputs_path, buffer.getvalue())
    return _Reference(x_test, y_test, keras_test)


def _calibration(src: Source, shape: tuple[int, ...], contract: InputContract,
                 options: ConvertOptions, progress: Progress):
    """The calibration set in model values (from ``calib_data`` or the train split).

    Raises ConfigError for a bare model without ``calib_data``; DataError/ModelError
    when the samples do not fit the model's input shape or the input contract.
    """
    calib_data, calib_samples, seed = options.calib_data, options.calib_samples, options.seed
    if calib_data is not None:
        calibration = calib.from_folder(calib_data, src.config, calib_samples, seed)
    elif src.splits is not None:
        calibration = calib.from_run(src.splits, src.config, calib_samples, seed)
    else:
        raise ConfigError(f"{src.model_path} is not in a run directory: pass --calib-data "
                          "for calibrated modes")
    calibration.check_shape(shape, src.model_path)
    calibration = calibration.to_model_values(contract)
    calibration.check_values(contract, calib_data if calib_data is not None
                             else src.folder.splits_path)
    progress(f"calibration: {calibration.description}")
    return calibration


def run_conversion(source: str | Path, modes: Sequence[str], options: ConvertOptions,
                   progress: Progress | None = None) -> ConversionReport:
    """Convert ``source`` (run directory or .keras file) in ``modes`` and report the drift.

    Steps: validate the options, load the model and its input contract, the Keras
    reference outputs, calibration (when a mode needs it), one conversion per mode,
    then per-layer debugging and the budget/fallback step. Writes
    ``<stem>_<mode>.tflite`` + ``<stem>_<mode>.json`` next to the model,
    ``reference_outputs.npz`` (Keras test outputs), ``conversion_report.json/.md``
    and, with ``debug_layers``, ``quant_debug.png`` (names from
    :class:`~edgepose.rundir.RunDir`). Raises ConfigError for bad options (before any
    work), ModelError for a model that cannot be converted as given, and
    :class:`DriftExceeded` (after writing everything) when a mode loses more than
    ``max_drop`` accuracy points on the test split. ``options.stated`` is the input
    contract the user gave (:func:`source_contract` says when it is required); it is
    applied to the Keras reference, calibration, drift, and written in every manifest.
    """
    progress = progress or (lambda message: None)
    modes = options.validate(modes)
    io, compat, seed, max_drop = options.io, options.compat, options.seed, options.max_drop
    debug_layers, auto_fallback_enabled = options.debug_layers, options.auto_fallback

    src = resolve_source(source)
    progress(f"loading {src.model_path}")
    model = load_keras_model(src.model_path)
    shape = input_shape(model)
    src.config = infer_config(src.config, shape)
    contract = source_contract(src, model, options.stated)
    progress(f"input contract: {contract.describe()}")
    num_outputs = int(model.outputs[0].shape[-1])
    labels = src.labels or [str(i) for i in range(num_outputs)]
    if len(labels) != num_outputs:
        raise ModelError(f"model has {num_outputs} outputs but {len(labels)} labels",
                         src.model_path)

    reference = _reference_outputs(src, model, contract, shape)
    x_test, y_test, keras_test = reference.x, reference.y, reference.probabilities

    calibration = None
    if any(MODES[m].calibrated for m in modes) or debug_layers:
        calibration = _calibration(src, shape, contract, options, progress)

    hard_swish = count_hard_swish(model)
    rewrite = options.hardswish_rewrite == "on" or (options.hardswish_rewrite == "auto"
                                                    and hard_swish > 0)
    settings = {"io": io, "compat": compat, "seed": seed, "max_drop": max_drop,
                "hardswish_layers": hard_swish, "hardswish_rewrite": rewrite,
                "calib_samples": options.calib_samples, "input_contract": contract.describe(),
                "target": options.target,
                "inference_mode_bypassed": training_only_layers(model)}
    ctx = _Context(src, model, labels, sha256_file(src.model_path), x_test, y_test, keras_test,
                   settings, _float_weight_bytes(model), progress, contract)
    calibration_info = ({"source": calibration.source, "samples": len(calibration),
                         "seed": seed, "sample": calibration.description} if calibration else {})
    report = ConversionReport(
        source=str(src.model_path), source_sha256=ctx.sha256, task=src.config["task"],
        test_samples=int(len(x_test)),
        keras_accuracy=float(np.mean(keras_test.argmax(1) == y_test)) if len(x_test) else None,
        calibration=calibration_info, settings=settings, versions=versions())

    with tempfile.TemporaryDirectory(prefix="edgepose-convert-") as tmp:
        exports: dict[bool, Path] = {}

        def exported(integer: bool) -> Path:
            key = integer and rewrite
            if key not in exports:
                progress("exporting fixed-batch SavedModel"
                         + (" (hard-swish rewritten for XNNPACK int8)" if key else ""))
                graph = rewrite_hard_swish(model) if key else model
                # checked against model(x, training=False) on real inputs when there are any
                probe = (contract.normalize(x_test) if len(x_test)
                         else (calibration.x if calibration else None))  # model values
                exports[key] = export_saved_model(graph, Path(tmp) / f"saved_{int(key)}",
                                                  probe, src.model_path)
            return exports[key]

        written: dict[str, dict[str, Any]] = {}  # mode -> the settings it was written with
        for name in modes:
            mode = MODES[name]
            progress(f"converting {name}")
            start = time.perf_counter()
            data = convert_mode(exported(mode.calibrated), mode, calibration, io, compat,
                                source=src.model_path, layer_names=_layer_names(model))
            seconds = time.perf_counter() - start
            mode_settings = dict(settings, mode=name,
                                 io=io if mode.full_integer and not mode.int16_activations
                                 else "float",
                                 calibration=calibration_info if mode.calibrated else None,
                                 hardswish_rewrite=rewrite and mode.calibrated)
            report.modes.append(_write_mode(ctx, name, data, seconds, mode_settings))
            written[name] = mode_settings

        # --target: speed figures on the target, and the int8 conversion fastest there
        target_step(report, options, modes, ctx=ctx, exported=exported, calibration=calibration,
                    rewrite=rewrite, hard_swish=hard_swish,
                    write_int8=lambda data, extra: _write_mode(
                        ctx, "int8", data, 0.0, dict(written["int8"], **extra)))

        if debug_layers or auto_fallback_enabled:
            progress("per-layer quantization debugging")
            report.layer_errors = layer_errors(exported(True), calibration, compat,
                                               source=src.model_path)
            if debug_layers:
                ctx.files.append(str(plot_layer_errors(report.layer_errors,
                                                       src.out_dir / "quant_debug.png")))

        if auto_fallback_enabled and report.mode("int8").drop_pct is not None \
                and report.mode("int8").drop_pct > max_drop:
            report.fallback = _run_fallback(ctx, report, exported(True), calibration, io,
                                            compat, max_drop)

    report.files = ctx.files + [str(src.folder.conversion_report_path(".json")),
                                str(src.folder.conversion_report_path(".md"))]
    if max_drop is not None:
        report.failed_modes = [m.mode for m in report.modes
                               if m.drop_pct is not None and m.drop_pct > max_drop]
        if report.fallback is not None and report.fallback.within_budget \
                and "int8" in report.failed_modes:
            report.failed_modes.remove("int8")  # replaced by int8-fallback, which fits
    report.merge_previous(src.out_dir)  # keep earlier modes made from this same model
    report.save(src.out_dir)
    if report.failed_modes:
        worst = max((report.mode(m) for m in report.failed_modes), key=lambda m: m.drop_pct)
        raise DriftExceeded(f"{', '.join(report.failed_modes)} lost more than {max_drop} "
                            f"accuracy points on the test split ({worst.mode}: "
                            f"{worst.drop_pct:.2f})", src.folder.conversion_report_path(".md"))
    return report


def _run_fallback(ctx: _Context, report: ConversionReport, saved_model: Path, calibration,
                  io: str, compat: str | None, max_drop: float):
    """int8 over budget: keep layers float (worst-ranked or a prefix) until the val drop fits."""
    src = ctx.source
    val = src.splits.samples("val") if src.splits is not None else []
    if val:
        x_val, y_val = load_inputs(src.splits, val, src.config)
    else:  # no validation split: choose on the test split and say so in the report
        x_val, y_val = ctx.x_test, ctx.y_test
    report.settings["fallback_selection_split"] = "val" if val else "test"
    keras_val = keras_probabilities(ctx.model, ctx.contract.normalize(x_val))
    keras_val_acc = float(np.mean(keras_val.argmax(1) == y_val))

    def val_drop(data: bytes) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "candidate.tflite"
            path.write_bytes(data)
            probs = tflite_probabilities(Classifier.from_file(
                path, num_threads=1, stated=ctx.contract.as_stated()), x_val)
        return 100.0 * (keras_val_acc - float(np.mean(probs.argmax(1) == y_val)))

    ctx.progress(f"auto-fallback: int8 lost {report.mode('int8').drop_pct:.2f} points, "
                 f"budget {max_drop}")
    start = time.perf_counter()
    calibrated = calibrate(saved_model, calibration, compat, source=src.model_path)
    result, data = auto_fallback(calibrated, report.layer_errors, val_drop, max_drop, io,
                                 compat, source=str(src.model_path))
    seconds = time.perf_counter() - start
    ctx.progress(f"auto-fallback: {len(result.steps)} candidate(s) tried, chose "
                 f"{len(result.float_layers)} float layer(s) by {result.strategy} "
                 f"(within budget on {report.settings['fallback_selection_split']}: "
                 f"{result.within_budget})")
    settings = dict(ctx.settings, mode=FALLBACK_MODE, io=io, calibration=report.calibration,
                    float_layers=result.float_layers, fallback_strategy=result.strategy)
    report.modes.append(_write_mode(ctx, FALLBACK_MODE, data, seconds, settings,
                                    result.float_layers))
    return result
