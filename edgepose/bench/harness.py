"""Measure latency, accuracy and drift of ``.tflite`` models on this device.

For every model x XNNPACK setting x thread count, one :class:`BenchRow`:

- *invoke*: ``interpreter.invoke()`` alone, on an input already in the tensor;
- *end to end*: decode + preprocess + quantize + invoke + dequantize + top-k,
  i.e. :meth:`Classifier.classify` on a file (or on an in-memory array when no
  data is given: then there is no decode);
- model load time, file size, peak RSS, and which ops XNNPACK took.

With labelled data (``--data DIR`` or ``--split test``), every sample is also
classified once per model and XNNPACK setting for accuracy and drift against a
reference: the Keras outputs saved at conversion (``reference_outputs.npz``)
when they cover the samples, else the float32 TFLite model next to the model.
Warm-up runs are excluded from every statistic; the first invoke after loading
is reported apart (``first_invoke_ms``, like ``benchmark_model``'s "First
inference"), with the mean of the warm-up runs.

A model that is not a classifier (several inputs or outputs, an output that is
not a score vector, labels that do not fit) is timed like ``benchmark_model``
does (:mod:`edgepose.bench.any_model`): seeded random or given inputs, every
input and output listed, no accuracy. A sample that cannot be read (a broken
image) is left out and listed in ``BenchResult.skipped``; the bench fails only
when no sample could be read.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgepose.bench.any_model import AnyModel
from edgepose.bench.checks import busy_warnings, slower_than_fp32
from edgepose.bench.device import conditions, device_info
from edgepose.bench.heldout import held_out
from edgepose.bench.labelled_data import (
    LabelledData,
    folder_data,
    screen,
    split_data,
)
from edgepose.bench.model_rows import any_model_row, classifier_row, runtime_name
from edgepose.bench.options import BenchOptions
from edgepose.bench.references import References, accuracy_and_drift
from edgepose.bench.results import BenchResult, BenchRow, BenchSettings, SkippedInput
from edgepose.bench.stats import Clock
from edgepose.errors import ConfigError
from edgepose.runtime.classifier import Classifier
from edgepose.runtime.drift_stats import DriftStats
from edgepose.runtime.manifest import Manifest
from edgepose.runtime.model_checks import FixedBatch, classifier_problem

__all__ = ["BenchResult", "BenchRow", "measure", "not_a_classifier", "run_bench"]


def not_a_classifier(model: Path, given: dict[str, str] | None = None, stated=None,
                     scores_needed: bool = False) -> tuple[Classifier | None, str | None]:
    """``(classifier, None)`` when ``model`` is benchmarked as a classifier, else ``(None, why)``.

    A model with an edgepose manifest is a classifier (a broken one raises).
    Otherwise it must pass :func:`~edgepose.runtime.model_checks.classifier_problem`;
    ``given`` arrays (``--input``) always mean the raw path. ``scores_needed`` (labelled
    data to score) loads the classifier strictly: a model whose input contract is
    unknown is then refused (ModelError) rather than timed on guessed pixels.
    """
    if given:
        return None, "inputs given with --input"
    if not Manifest.path_for(model).is_file():
        why = classifier_problem(AnyModel(model, 1, use_xnnpack=False).interpreter)
        if why is not None:
            return None, why
    try:
        return Classifier.from_file(model, num_threads=1, use_xnnpack=False, stated=stated,
                                    strict=scores_needed), None
    except FixedBatch as exc:  # timing alone still runs it at its own batch
        if scores_needed:
            raise
        return None, exc.message


def held_out_data(data: LabelledData, model: Path) -> tuple[LabelledData, str | None]:
    """``data`` without the images ``model`` was trained or selected on, and the warning
    saying how many were left out (:mod:`edgepose.bench.heldout`)."""
    split = held_out(data.files, model, data.source)
    keep = split.keep
    kept = LabelledData([data.files[i] for i in keep], [data.class_names[i] for i in keep],
                        [data.keys[i] for i in keep], data.source, data.run_dir)
    return kept, split.note(model, data.source)


def run_bench(models: Sequence[str | Path], *, data: str | Path | None = None,
              split: str | None = None, threads: Sequence[int | None] = (None,),
              xnnpack: Sequence[bool] = (True,), warmup: int = 20, runs: int = 200,
              reference: str = "auto", max_samples: int | None = None, k: int = 1,
              clock: Clock = time.perf_counter_ns, seed: int = 0,
              inputs: dict[str, str] | None = None, stated=None) -> BenchResult:
    """The keyword form of :func:`measure` (the options of :class:`BenchOptions`)."""
    options = BenchOptions(data=data, split=split, threads=threads, xnnpack=xnnpack,
                           warmup=warmup, runs=runs, reference=reference,
                           max_samples=max_samples, seed=seed, inputs=inputs, stated=stated)
    return measure(models, options, k=k, clock=clock)


def measure(models: Sequence[str | Path], options: BenchOptions, *, k: int = 1,
            clock: Clock = time.perf_counter_ns) -> BenchResult:
    """Benchmark each model for each thread count and XNNPACK setting (see module docstring).

    ``options`` (see :class:`BenchOptions`) is validated first. Latencies are in
    milliseconds; ``clock`` returns integer nanoseconds (inject a fake one in
    tests); ``k`` is the top-k of the end-to-end classify path. Raises ConfigError
    for no model or options that cannot go together, DataError for unusable data
    (an empty split, classes the model does not know), ModelError for a model that
    cannot load or run.
    """
    if not models:
        raise ConfigError("no model given")
    options.validate()
    data, split, warmup, runs = options.data, options.split, options.warmup, options.runs
    reference, max_samples, seed = options.reference, options.max_samples, options.seed
    inputs, stated = options.inputs, options.stated
    models = [Path(m) for m in models]
    threads = list(options.threads) or [None]
    xnnpack = list(options.xnnpack) or [True]

    before = conditions()
    rows: list[BenchRow] = []
    runtime = None
    used_samples = 0
    sample_notes: dict[str, None] = {}  # ordered set: one line per dataset sampled
    notes: list[str] = []
    skipped: dict[str, SkippedInput] = {}
    datasets: dict[Path, LabelledData | None] = {}
    references: dict[str, References] = {}
    for model in models:
        labelled = None
        if data is not None:
            labelled = datasets.setdefault(Path(data), folder_data(data))
            labelled, seen_note = held_out_data(labelled, model)
            notes += [seen_note] if seen_note else []
        elif split is not None:
            labelled = datasets.setdefault(model.parent, split_data(model, split))
        if labelled is not None:
            labelled, choice = labelled.subset(max_samples, seed)
            sample_notes.setdefault(choice.describe(), None)
        screening, why = not_a_classifier(model, inputs, stated, labelled is not None)
        screened = None
        if why is not None:
            notes.append(f"{model.name} is timed as a generic model, not a classifier "
                         f"({why})" + ("; no accuracy on the data given" if labelled else "")
                         + (f"; {stated.flags()} not applied: its inputs are random or "
                            "given arrays" if stated is not None and stated.given else ""))
        elif labelled is not None:
            screened = screen(screening, labelled)
            for item in screened.skipped:
                skipped.setdefault(item.file, item)
        del screening
        for use_xnnpack in xnnpack:
            accuracy_done: tuple[float | None, DriftStats | None, str | None] | None = None
            for n in threads:
                if why is not None:
                    row = any_model_row(model, n, use_xnnpack, warmup, runs, clock, inputs, seed)
                    runtime = runtime or runtime_name()
                    rows.append(row)
                    continue
                rng = np.random.default_rng(seed)
                row, classifier = classifier_row(model, n, use_xnnpack, warmup, runs, clock,
                                             screened, rng, k, stated)
                runtime = str(classifier.backend)
                if screened is not None:
                    if accuracy_done is None:
                        accuracy_done = accuracy_and_drift(classifier, screened, reference,
                                                           references)
                        used_samples = max(used_samples, len(screened.arrays))
                    row.accuracy, row.drift, row.reference = accuracy_done
                rows.append(row)
                del classifier
    after = conditions()
    device = device_info(runtime, before, after)
    settings = BenchSettings(warmup=warmup, runs=runs, threads=threads, xnnpack=xnnpack,
                             data=None if data is None and split is None else
                             (str(data) if data is not None else f"split:{split}"),
                             samples=used_samples, sample="; ".join(sample_notes) or None,
                             clock=getattr(clock, "__qualname__", type(clock).__name__))
    warnings = list(device.warnings) + notes
    if skipped:
        warnings.append(f"{len(skipped)} sample(s) could not be read and were left out "
                        "(listed under skipped)")
    busy = busy_warnings(device, rows)
    warnings += busy + slower_than_fp32(rows)
    return BenchResult(device=device, settings=settings, rows=rows, warnings=warnings,
                       skipped=list(skipped.values()), machine_busy=bool(busy))
