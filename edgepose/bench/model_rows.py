"""Time one model with one XNNPACK setting and thread count: one :class:`BenchRow`.

:func:`classifier_row` times ``invoke()`` alone and the end-to-end classify path
(decode + preprocess + quantize + invoke + dequantize + top-k);
:func:`any_model_row` times a model that is not a classifier like
``benchmark_model`` does. Warm-up runs are excluded from every statistic; the
first invoke after loading is reported apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgepose.bench.any_model import AnyModel, list_tensors
from edgepose.bench.device import current_rss_mb, peak_rss_mb
from edgepose.bench.labelled_data import Screened
from edgepose.bench.results import BenchRow
from edgepose.bench.stats import Clock, latency_stats, time_phases
from edgepose.rundir import RunDir
from edgepose.runtime.classifier import Classifier
from edgepose.runtime.manifest import Manifest


def _mode_of(classifier: Classifier) -> str:
    if classifier.manifest is not None:
        return classifier.manifest.mode
    return RunDir.mode_in_name(classifier.model_path) or "?"


def _random_input(classifier: Classifier, rng: np.random.Generator) -> np.ndarray:
    """A sample of the model's shape in real units: 0..255 pixels, or N(0, 1) features."""
    shape = classifier.input_shape[1:]
    if classifier.preprocessing is not None:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.standard_normal(shape).astype(np.float32)


def _phase_fields(first_ns: int, warmup_ns: list[int]) -> dict:
    return {"first_invoke_ms": first_ns / 1e6,
            "warmup_invoke_ms": float(np.mean(warmup_ns)) / 1e6 if warmup_ns else None}


def classifier_row(model: Path, threads: int | None, xnnpack: bool, warmup: int, runs: int,
                   clock: Clock, data: Screened | None, rng: np.random.Generator,
                   k: int, stated=None) -> tuple[BenchRow, Classifier]:
    """Load ``model`` as a classifier and time ``invoke()`` and end-to-end classify.

    ``warmup`` + ``runs`` calls each, timed with ``clock`` (integer ns; the row holds
    ms). End to end runs on ``data``'s files (decode included), else on 8 seeded
    random arrays from ``rng``; ``k`` is the top-k asked for. Returns the row and the
    loaded classifier (for the accuracy pass). Raises ModelError when the model cannot
    load or run (strictly, input contract required, when ``data`` is given).
    """
    rss_before = current_rss_mb()
    start = clock()
    classifier = Classifier.from_file(model, num_threads=threads, use_xnnpack=xnnpack,
                                      strict=data is not None,  # no data: timing only
                                      stated=stated)
    load_ms = (clock() - start) / 1e6
    rss_after = current_rss_mb()
    k = min(k, classifier.num_classes)

    if data is not None:
        first = data.arrays[0]
        e2e_inputs: list = list(data.labelled.files)
        e2e_kind = "files"
    else:
        first = _random_input(classifier, rng)
        e2e_inputs = [_random_input(classifier, rng) for _ in range(8)]
        e2e_kind = "arrays"
    classifier.set_input(first)
    invoke = time_phases(lambda i: classifier.invoke(), runs, warmup, clock)
    e2e = time_phases(lambda i: classifier.classify(e2e_inputs[i % len(e2e_inputs)], k),
                      runs, warmup, clock)
    row = BenchRow(
        model=str(model), mode=_mode_of(classifier), size_bytes=model.stat().st_size,
        threads=threads, xnnpack=xnnpack,
        delegation=classifier.delegation.summary() if xnnpack else "off",
        load_ms=load_ms, invoke=latency_stats(invoke.runs),
        end_to_end=latency_stats(e2e.runs),
        end_to_end_input=e2e_kind, peak_rss_mb=peak_rss_mb(),
        load_rss_mb=(rss_after - rss_before) if rss_before and rss_after else None,
        outputs=len(classifier.outputs), tensors=list_tensors(classifier.interpreter),
        invoke_ms=[t / 1e6 for t in invoke.runs], end_to_end_ms=[t / 1e6 for t in e2e.runs],
        **_phase_fields(invoke.first, invoke.warmup))
    return row, classifier


def any_model_row(model: Path, threads: int | None, xnnpack: bool, warmup: int, runs: int,
                  clock: Clock, given: dict[str, str] | None, seed: int) -> BenchRow:
    """One row for a model that is not (treated as) a classifier: timing only.

    ``given`` maps input names to ``.npy`` files (``--input``), else seeded random
    inputs. Raises ModelError when the model cannot load or run, DataError for a
    given array that does not fit its input.
    """
    from edgepose.runtime.delegation import delegation_report

    rss_before = current_rss_mb()
    start = clock()
    runner = AnyModel(model, threads, xnnpack, given, seed)
    load_ms = (clock() - start) / 1e6
    rss_after = current_rss_mb()
    runner.set_inputs()
    invoke = time_phases(lambda i: runner.invoke(), runs, warmup, clock)
    e2e = time_phases(lambda i: runner.run(), runs, warmup, clock)
    manifest = Manifest.path_for(model)
    mode = (Manifest.load(manifest).mode if manifest.is_file() else
            RunDir.mode_in_name(model) or "?")
    return BenchRow(
        model=str(model), mode=mode, size_bytes=model.stat().st_size, threads=threads,
        xnnpack=xnnpack,
        delegation=delegation_report(runner.interpreter, xnnpack).summary() if xnnpack
        else "off",
        load_ms=load_ms, invoke=latency_stats(invoke.runs), end_to_end=latency_stats(e2e.runs),
        end_to_end_input="given arrays" if given else "random arrays",
        peak_rss_mb=peak_rss_mb(),
        load_rss_mb=(rss_after - rss_before) if rss_before and rss_after else None,
        outputs=sum(t.role == "output" for t in runner.tensors), kind="any model",
        tensors=runner.tensors, invoke_ms=[t / 1e6 for t in invoke.runs],
        end_to_end_ms=[t / 1e6 for t in e2e.runs], **_phase_fields(invoke.first, invoke.warmup))


def runtime_name() -> str:
    """The TFLite runtime this process uses (ai-edge-litert or tflite-runtime, with version)."""
    from edgepose.runtime.interpreter import find_backend

    return str(find_backend())
