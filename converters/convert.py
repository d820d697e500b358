"""``convert_run``: a run directory (or a .keras file) -> TFLite models, manifests, drift report.

:func:`run_conversion` is a short list of steps, each a function with one job:
load the model and its input contract; the Keras reference outputs on the test
split and the calibration set (:mod:`~edgepose.converters.conversion_inputs`);
one step per mode (:mod:`~edgepose.converters.mode_steps`, every mode timed,
written atomically with its manifest and measured on the device side by one
wrapper); per-layer debugging, auto-fallback and the drift budget
(:mod:`~edgepose.converters.budget`). One export per conversion (two when the
hard-swish rewrite is on: float modes keep the original graph, integer modes get
the rewritten one).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.converters import held_out
from edgepose.converters.budget import (
    check_budget,
    debug_layers_step,
    needs_fallback,
    over_budget,
    run_fallback,
)
from edgepose.converters.conversion_inputs import Reference, calibration_set, reference_outputs
from edgepose.converters.conversion_report import ConversionReport
from edgepose.converters.export import input_shape, load_keras_model, training_only_layers
from edgepose.converters.hardswish import count_hard_swish
from edgepose.converters.manifest_writer import versions
from edgepose.converters.mode_steps import ConversionContext, SavedModels, table_mode
from edgepose.converters.model_outputs import keras_output_kind, keras_probabilities
from edgepose.converters.modes import DEFAULT_MODES, MODES
from edgepose.converters.options import ConvertOptions
from edgepose.converters.source import Source, infer_config, resolve_source, source_contract
from edgepose.converters.target import target_step
from edgepose.errors import ModelError
from edgepose.fileio import sha256_file
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

    Raises:
        ConfigError, ModelError, DataError, DriftExceeded: as :func:`run_conversion`.
    """
    options = ConvertOptions(io=io, compat=compat, calib_samples=calib_samples,
                             calib_data=calib_data, seed=seed, max_drop=max_drop,
                             debug_layers=debug_layers, auto_fallback=auto_fallback_enabled,
                             hardswish_rewrite=hardswish_rewrite, stated=stated)
    return run_conversion(source, modes, options, progress)


@dataclass
class _Loaded:
    """The source model with what was read from it: input shape, contract, labels."""

    src: Source
    model: Any
    shape: tuple[int, ...]  # input shape without the batch axis
    contract: InputContract
    labels: list[str]


def _load(source: str | Path, options: ConvertOptions, progress: Progress) -> _Loaded:
    """Load the model and its input contract; one label per output or ModelError."""
    src = resolve_source(source)
    progress(f"loading {src.model_path}")
    model = load_keras_model(src.model_path)
    shape = input_shape(model)
    src.config = infer_config(src.config, shape, src.model_path)
    try:  # probabilities or logits: refused here, naming the file, when the model cannot say
        keras_output_kind(model)
    except ModelError as exc:
        raise ModelError(exc.message, src.model_path) from None
    contract = source_contract(src, model, options.stated)
    progress(f"input contract: {contract.describe()}")
    num_outputs = int(model.outputs[0].shape[-1])
    labels = src.labels or [str(i) for i in range(num_outputs)]
    if len(labels) != num_outputs:
        raise ModelError(f"model has {num_outputs} outputs but {len(labels)} labels",
                         src.model_path)
    return _Loaded(src, model, shape, contract, labels)


def run_conversion(source: str | Path, modes: Sequence[str], options: ConvertOptions,
                   progress: Progress | None = None) -> ConversionReport:
    """Convert ``source`` (run directory or .keras file) in ``modes`` and report the drift.

    Steps: validate the options, load the model and its input contract, the Keras
    reference outputs, calibration (when a mode needs it), one conversion per mode,
    then per-layer debugging and the budget/fallback step. Writes
    ``model_<mode>.tflite`` + ``model_<mode>.json`` next to the model (any source name),
    ``reference_outputs.npz`` (Keras test outputs), ``conversion_report.json/.md``
    and, with ``debug_layers``, ``quant_debug.png`` (names from
    :class:`~edgepose.rundir.RunDir`). ``options.stated`` is the input
    contract the user gave (:func:`source_contract` says when it is required); it is
    applied to the Keras reference, calibration, drift, and written in every manifest.

    Raises:
        ConfigError: bad options (before any work), or calibrated modes for a bare
            model without ``calib_data``.
        ModelError: a model that cannot be converted as given.
        DataError: calibration or test samples that cannot be read or do not fit.
        DriftExceeded: (after writing everything) a mode loses more than
            ``max_drop`` accuracy points on the test split.
    """
    progress = progress or (lambda message: None)
    modes = options.validate(modes)
    loaded = _load(source, options, progress)
    src, model, contract = loaded.src, loaded.model, loaded.contract

    held = (held_out.from_eval_folder(options.eval_data, src.config, loaded.labels)
            if options.eval_data is not None else None)
    reference = (reference_outputs(src, model, contract, loaded.shape) if held is None
                 else Reference(held.x, held.y,
                                keras_probabilities(model, contract.normalize(held.x))))
    calibration = None
    if any(MODES[m].calibrated for m in modes) or options.debug_layers:
        calibration = calibration_set(src, loaded.shape, contract, options, progress)
        calibration.check_classes(loaded.labels, options.allow_one_class)
    if held is not None:
        held_out.check_disjoint(held, calibration, src.splits)

    hard_swish = count_hard_swish(model)
    rewrite = options.hardswish_rewrite == "on" or (options.hardswish_rewrite == "auto"
                                                    and hard_swish > 0)
    settings = {"io": options.io, "compat": options.compat, "seed": options.seed,
                "max_drop": options.max_drop, "hardswish_layers": hard_swish,
                "hardswish_rewrite": rewrite, "calib_samples": options.calib_samples,
                "input_contract": contract.describe(),
                "target": options.target,
                "inference_mode_bypassed": training_only_layers(model)}
    calibration_info = ({"source": calibration.source, "samples": len(calibration),
                         "seed": options.seed, "sample": calibration.description,
                         **calibration.report_fields()} if calibration else {})
    sha256 = sha256_file(src.model_path)
    report = ConversionReport(
        source=str(src.model_path), source_sha256=sha256, task=src.config["task"],
        test_samples=int(len(reference.x)), keras_accuracy=reference.accuracy,
        calibration=calibration_info, settings=settings, versions=versions())
    report.drift_data, report.drift_measured = held_out.drift_data(
        src.model_path, src.splits.root if src.splits else None, held, len(reference.x))
    report.eval_skipped = [{"file": f, "reason": r} for f, r in (held.skipped if held else [])]
    # the export is checked against model(x, training=False) on real inputs when there are any
    probe = (contract.normalize(reference.x) if len(reference.x)
             else (calibration.x if calibration else None))  # model values

    with tempfile.TemporaryDirectory(prefix="edgepose-convert-") as tmp:
        ctx = ConversionContext(
            src, model, loaded.labels, sha256, reference, settings, _float_weight_bytes(model),
            progress, contract, options, report,
            SavedModels(model, Path(tmp), rewrite, probe, src.model_path, progress),
            _layer_names(model), calibration, rewrite)
        # mode -> the settings it was written with (the target step may rewrite int8)
        written = {name: table_mode(ctx, name).settings for name in modes}
        # --target: speed figures on the target, and the int8 conversion fastest there
        target_step(ctx, modes, written)
        if options.debug_layers or options.auto_fallback:
            debug_layers_step(ctx)
        if needs_fallback(ctx):
            run_fallback(ctx)

    report.files = ctx.files + [str(src.folder.conversion_report_path(".json")),
                                str(src.folder.conversion_report_path(".md"))]
    report.failed_modes = over_budget(report, options.max_drop)
    report.merge_previous(src.out_dir)  # keep earlier modes made from this same model
    report.save(src.out_dir)
    check_budget(report, options.max_drop, src.folder.conversion_report_path(".md"))
    return report
