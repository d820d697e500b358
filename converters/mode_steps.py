"""One step per conversion mode, and the one wrapper that does every mode's bookkeeping.

A mode step turns the exported SavedModel into ``.tflite`` bytes and the settings
its manifest records (:class:`ModeOutput`). :func:`mode_step` wraps every step the
same way (announce, time, write atomically with its manifest, measure on the
device side, report one progress line), as Ultralytics' ``@try_export`` wraps
every export format: the bookkeeping is written once, not per mode.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.converters.calibration import CalibrationSet
from edgepose.converters.conversion_inputs import Reference
from edgepose.converters.conversion_report import ConversionReport, ModeResult
from edgepose.converters.export import export_saved_model
from edgepose.converters.fallback import FallbackResult
from edgepose.converters.hardswish import rewrite_hard_swish
from edgepose.converters.manifest_writer import build_manifest
from edgepose.converters.metadata import add_metadata
from edgepose.converters.model_outputs import (
    device_classifier,
    keras_output_kind,
    median_latency_ms,
    tflite_probabilities,
)
from edgepose.converters.modes import MODES
from edgepose.converters.options import ConvertOptions
from edgepose.converters.source import Source
from edgepose.converters.tflite import convert_mode
from edgepose.fileio import atomic_path
from edgepose.runtime.drift_stats import compare_outputs
from edgepose.runtime.input_contract import InputContract

Progress = Callable[[str], None]


class SavedModels:
    """The fixed-batch SavedModel exports of one conversion, each made on first use.

    One export for the float modes (the original graph) and, when the hard-swish
    rewrite is on, a second one for the integer modes (the rewritten graph).
    ``probe``: ``N x ...`` inputs in model values the export is checked against
    (``model(x, training=False)``), or None to probe with generated inputs.
    """

    def __init__(self, model, folder: Path, rewrite: bool, probe: np.ndarray | None,
                 source: Path, progress: Progress) -> None:
        self.model, self.folder, self.rewrite = model, folder, rewrite
        self.probe, self.source, self.progress = probe, source, progress
        self._paths: dict[bool, Path] = {}

    def get(self, integer: bool) -> Path:
        """The SavedModel directory for float (``integer=False``) or integer modes.

        Raises:
            ModelError: the export does not reproduce the Keras model's outputs.
        """
        key = integer and self.rewrite
        if key not in self._paths:
            self.progress("exporting fixed-batch SavedModel"
                          + (" (hard-swish rewritten for XNNPACK int8)" if key else ""))
            graph = rewrite_hard_swish(self.model) if key else self.model
            self._paths[key] = export_saved_model(graph, self.folder / f"saved_{int(key)}",
                                                  self.probe, self.source)
        return self._paths[key]


@dataclass
class ConversionContext:
    """Everything the steps of one conversion share (built once by ``run_conversion``).

    ``settings`` are the conversion-wide manifest settings; ``calibration`` is None
    when no step needs it; ``files`` collects every file written, in order.
    """

    source: Source
    model: Any
    labels: list[str]
    sha256: str
    reference: Reference
    settings: dict[str, Any]
    weight_bytes: int  # float32 weights, the size ratio's denominator
    progress: Progress
    contract: InputContract
    options: ConvertOptions
    report: ConversionReport
    exports: SavedModels
    layer_names: list[str]
    calibration: CalibrationSet | None = None
    rewrite: bool = False
    files: list[str] = field(default_factory=list)


@dataclass
class ModeOutput:
    """What one mode step made: the ``.tflite`` bytes and the settings its manifest records.

    ``float_layers`` and ``fallback`` are set by the auto-fallback step only.
    """

    data: bytes
    settings: dict[str, Any]
    float_layers: list[str] = field(default_factory=list)
    fallback: FallbackResult | None = None


Step = Callable[..., ModeOutput]


def mode_step(step: Step) -> Step:
    """Wrap a mode step: announce it, time it, write and measure its model, report it.

    The wrapped step is called as ``step(ctx, name, *args)``; its conversion time
    (seconds, ``time.perf_counter``) is what the report's ``conversion_seconds``
    shows, the writing and measuring after it are not counted. The
    :class:`ModeResult` is appended to ``ctx.report.modes``; the step's
    :class:`ModeOutput` is returned. Raises whatever the step raises (nothing is
    written for a mode that fails).
    """
    @functools.wraps(step)
    def run(ctx: ConversionContext, name: str, *args: Any) -> ModeOutput:
        ctx.progress(f"converting {name}")
        start = time.perf_counter()
        output = step(ctx, name, *args)
        seconds = time.perf_counter() - start
        ctx.report.modes.append(write_mode(ctx, name, output.data, seconds, output.settings,
                                           output.float_layers))
        return output
    return run


@mode_step
def table_mode(ctx: ConversionContext, name: str) -> ModeOutput:
    """Convert one mode of the :data:`MODES` table (fp32, fp16, dynamic, int8, int16x8).

    Raises:
        ModelError: the TFLite converter refuses the model in this mode (the
            message names the layer when the converter says which).
    """
    mode, options = MODES[name], ctx.options
    data = convert_mode(ctx.exports.get(mode.calibrated), mode, ctx.calibration, options.io,
                        options.compat, source=ctx.source.model_path,
                        layer_names=ctx.layer_names)
    io = options.io if mode.full_integer and not mode.int16_activations else "float"
    calibration = ctx.report.calibration if mode.calibrated else None
    return ModeOutput(data, dict(ctx.settings, mode=name, io=io, calibration=calibration,
                                 hardswish_rewrite=ctx.rewrite and mode.calibrated))


def write_mode(ctx: ConversionContext, mode: str, data: bytes, seconds: float,
               settings: dict[str, Any], float_layers: Sequence[str] = ()) -> ModeResult:
    """Write model + manifest atomically, then measure them as the device will run them.

    ``seconds``: conversion time. The drift is measured on the test split with the
    device-side classifier, the latency (ms, median) on one sample, with one thread.
    """
    from edgepose.runtime.delegation import inspect_model

    folder, stem = ctx.source.folder, ctx.source.stem
    model_path, manifest_path = folder.tflite_path(mode, stem), folder.manifest_path(mode, stem)
    config = ctx.source.config
    preprocessing = config.get("preprocessing") if config["task"] == "image" else None
    size = (int(preprocessing["height"]), int(preprocessing["width"])) if preprocessing else None
    reference = ctx.reference
    # labels and the input contract also travel inside the model, as TFLite Metadata
    data = add_metadata(data, model_path.stem, ctx.labels, ctx.contract, size)
    with atomic_path(model_path) as tmp_model, atomic_path(manifest_path) as tmp_manifest:
        tmp_model.write_bytes(data)
        manifest = build_manifest(
            tmp_model, mode, task=config["task"], labels=ctx.labels,
            preprocessing=preprocessing,
            keypoint_layout=config.get("keypoint_layout"), source_model=ctx.source.model_path,
            source_sha256=ctx.sha256, settings=settings, contract=ctx.contract,
            output_kind=keras_output_kind(ctx.model))
        manifest.save(tmp_manifest)
        classifier = device_classifier(tmp_model, tmp_manifest)  # loaded once per mode
        drift = None
        if len(reference.x):
            probs = tflite_probabilities(classifier, reference.x)
            drift = compare_outputs(reference.probabilities, probs, reference.y, ctx.labels)
        sample = reference.x[0] if len(reference.x) else np.zeros(
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
