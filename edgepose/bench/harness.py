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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.bench.any_model import AnyModel, TensorInfo, list_tensors
from edgepose.bench.checks import busy_warnings, slower_than_fp32
from edgepose.bench.device import (
    DeviceInfo,
    conditions,
    current_rss_mb,
    device_info,
    peak_rss_mb,
)
from edgepose.bench.heldout import held_out
from edgepose.bench.options import BenchOptions
from edgepose.bench.stats import Clock, LatencyStats, latency_stats, time_phases
from edgepose.errors import ConfigError, DataError, EdgeposeError
from edgepose.rundir import RunDir
from edgepose.runtime.classifier import Classifier
from edgepose.runtime.drift_stats import DriftStats, compare_outputs
from edgepose.runtime.manifest import Manifest
from edgepose.runtime.model_checks import FixedBatch, classifier_problem
from edgepose.runtime.preprocess import IMAGE_SUFFIXES
from edgepose.sampling import SampleChoice, stratified_indices, take


@dataclass
class BenchRow:
    """One model run with one XNNPACK setting and thread count."""

    model: str
    mode: str  # manifest mode, else guessed from the file name, else "?"
    size_bytes: int
    threads: int | None
    xnnpack: bool
    delegation: str
    load_ms: float
    invoke: LatencyStats
    end_to_end: LatencyStats
    end_to_end_input: str  # "files" (decode included) or "arrays" (no decode)
    peak_rss_mb: float  # process peak so far (monotonic over the rows of one run)
    load_rss_mb: float | None  # RSS growth while loading this model
    outputs: int  # number of output tensors
    first_invoke_ms: float | None = None  # the first invoke after loading
    warmup_invoke_ms: float | None = None  # mean of the other warm-up invokes
    kind: str = "classifier"  # or "any model" (timed only, see any_model)
    tensors: list[TensorInfo] = field(default_factory=list)  # every input and output
    accuracy: float | None = None
    drift: DriftStats | None = None
    reference: str | None = None  # what the drift is measured against
    invoke_ms: list[float] = field(default_factory=list, repr=False)
    end_to_end_ms: list[float] = field(default_factory=list, repr=False)


@dataclass
class BenchSettings:
    """How the benchmark was run."""

    warmup: int
    runs: int
    threads: list[int | None]
    xnnpack: list[bool]
    data: str | None  # class-folder directory, or "<run>/splits.json:test"
    samples: int  # labelled samples used for accuracy (0 = latency only)
    sample: str | None = None  # "90 of 539 samples (stratified by class, seed 0) from ..."
    clock: str = "time.perf_counter_ns"


@dataclass
class BenchResult:
    """Everything one ``edgepose bench`` call measured, and where."""

    device: DeviceInfo
    settings: BenchSettings
    rows: list[BenchRow]
    warnings: list[str] = field(default_factory=list)
    skipped: list[SkippedInput] = field(default_factory=list)  # samples that could not be read
    machine_busy: bool = False  # a "machine busy" warning was given: do not record the timings


@dataclass
class SkippedInput:
    """A sample left out, and why (one line)."""

    file: str
    reason: str


@dataclass
class LabelledData:
    """Files with class names, and the sample paths reference outputs are keyed by."""

    files: list[Path]
    class_names: list[str]  # class name of each file
    keys: list[str]  # paths relative to the dataset root
    source: str
    run_dir: Path | None = None

    def subset(self, n: int | None, seed: int = 0) -> tuple[LabelledData, SampleChoice]:
        """A stratified, seeded subset of ``n`` samples (all of them when ``n`` is None)."""
        choice = stratified_indices(self.class_names, n, seed, self.source)
        return LabelledData(take(self.files, choice), take(self.class_names, choice),
                            take(self.keys, choice), self.source, self.run_dir), choice


def _mode_of(classifier: Classifier) -> str:
    if classifier.manifest is not None:
        return classifier.manifest.mode
    return RunDir.mode_in_name(classifier.model_path) or "?"


def folder_data(root: str | Path) -> LabelledData:
    """A class-folder directory: ``root/<class>/<file>`` (images or keypoint JSON)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError("data directory not found", root)
    files, names, keys = [], [], []
    suffixes = (*IMAGE_SUFFIXES, ".json")
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix.lower() in suffixes:
                files.append(path)
                names.append(folder.name)
                keys.append(path.relative_to(root).as_posix())
    if not files:
        raise DataError("no class folders with images or keypoint files", root)
    return LabelledData(files, names, keys, str(root))


def split_data(model_path: str | Path, split: str) -> LabelledData:
    """The ``split`` samples of the run directory the model sits in."""
    run = RunDir.open(Path(model_path).parent)
    splits = run.splits
    samples = splits.samples(split)
    if not samples:
        raise DataError(f"the {split} split is empty", run.splits_path)
    return LabelledData([splits.absolute(s) for s in samples],
                        [splits.classes[s.label] for s in samples], [s.path for s in samples],
                        f"{run.splits_path}:{split}", run.path)


def label_indices(classifier: Classifier, data: LabelledData) -> np.ndarray:
    index = {name: i for i, name in enumerate(classifier.labels)}
    missing = sorted(set(data.class_names) - set(index))
    if missing:
        raise DataError(f"classes {missing} of the data are not labels of "
                        f"{classifier.model_path.name} ({classifier.labels})", data.source)
    return np.array([index[name] for name in data.class_names], dtype=np.int64)


def _random_input(classifier: Classifier, rng: np.random.Generator) -> np.ndarray:
    """A sample of the model's shape in real units: 0..255 pixels, or N(0, 1) features."""
    shape = classifier.input_shape[1:]
    if classifier.preprocessing is not None:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.standard_normal(shape).astype(np.float32)


def _all_probabilities(classifier: Classifier, files: Sequence[Path]) -> np.ndarray:
    return np.stack([classifier.predict(classifier.prepare(f)) for f in files])


class _References:
    """Reference outputs per model folder, computed or loaded once per bench call."""

    def __init__(self, data: LabelledData, choice: str):
        self.data = data
        self.choice = choice
        self._cache: dict[Path, tuple[np.ndarray, str] | None] = {}

    def _saved(self, folder: Path) -> tuple[np.ndarray, str] | None:
        path = RunDir(self.data.run_dir or folder).reference_outputs_path
        if not path.is_file():
            path = RunDir(folder).reference_outputs_path
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as saved:
                paths = [str(p) for p in saved["paths"]]
                probs = np.asarray(saved["probabilities"], dtype=np.float32)
        except (KeyError, ValueError, OSError) as exc:
            raise DataError(f"not a reference outputs file ({exc})", path) from None
        row = {p: i for i, p in enumerate(paths)}
        if not all(k in row for k in self.data.keys):
            return None
        return probs[[row[k] for k in self.data.keys]], f"keras ({path.name})"

    def _fp32(self, folder: Path) -> tuple[np.ndarray, str] | None:
        path = RunDir(folder).tflite_path("fp32")
        if not path.is_file():
            return None
        reference = Classifier.from_file(path, num_threads=1)
        return _all_probabilities(reference, self.data.files), path.name

    def get(self, model_path: Path) -> tuple[np.ndarray, str] | None:
        folder = model_path.parent
        if folder not in self._cache:
            found = None
            if self.choice in ("auto", "keras"):
                found = self._saved(folder)
            if found is None and self.choice in ("auto", "fp32"):
                found = self._fp32(folder)
            if found is None and self.choice != "auto":
                raise DataError(f"no {self.choice} reference for the data next to the model",
                                folder)
            self._cache[folder] = found
        return self._cache[folder]


def _phase_fields(first_ns: int, warmup_ns: list[int]) -> dict:
    return {"first_invoke_ms": first_ns / 1e6,
            "warmup_invoke_ms": float(np.mean(warmup_ns)) / 1e6 if warmup_ns else None}


def _bench_one(model: Path, threads: int | None, xnnpack: bool, warmup: int, runs: int,
               clock: Clock, data: Screened | None, rng: np.random.Generator,
               k: int, stated=None) -> tuple[BenchRow, Classifier]:
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


def _bench_any(model: Path, threads: int | None, xnnpack: bool, warmup: int, runs: int,
               clock: Clock, given: dict[str, str] | None, seed: int) -> BenchRow:
    """One row for a model that is not (treated as) a classifier: timing only."""
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


@dataclass
class Screened:
    """The labelled samples a classifier could read, prepared once, and the ones it could not."""

    labelled: LabelledData
    arrays: list[np.ndarray]
    skipped: list[SkippedInput]


def screen(classifier: Classifier, data: LabelledData) -> Screened:
    """Prepare every sample; keep the readable ones, list the others with a one-line reason
    (a keypoint vector with no person in it is listed too: it has no class to score).

    Raises :class:`DataError` naming the data and the first failure when none is readable.
    """
    keep, arrays, skipped = [], [], []
    for i, path in enumerate(data.files):
        try:
            array = np.array(classifier.prepare(path), copy=True)
        except EdgeposeError as exc:
            skipped.append(SkippedInput(str(path), exc.message))
            continue
        nobody = classifier.no_person(array)  # "no person" has no class to score
        if nobody:
            skipped.append(SkippedInput(str(path), nobody))
            continue
        arrays.append(array)
        keep.append(i)
    if not keep:
        first = skipped[0]
        raise DataError(f"none of the {len(data.files)} samples could be read "
                        f"(first: {first.file}: {first.reason})", data.source)
    labelled = LabelledData([data.files[i] for i in keep], [data.class_names[i] for i in keep],
                            [data.keys[i] for i in keep], data.source, data.run_dir)
    return Screened(labelled, arrays, skipped)


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
    references: dict[str, _References] = {}
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
                    row = _bench_any(model, n, use_xnnpack, warmup, runs, clock, inputs, seed)
                    runtime = runtime or _runtime_name()
                    rows.append(row)
                    continue
                rng = np.random.default_rng(seed)
                row, classifier = _bench_one(model, n, use_xnnpack, warmup, runs, clock,
                                             screened, rng, k, stated)
                runtime = str(classifier.backend)
                if screened is not None:
                    if accuracy_done is None:
                        accuracy_done = _accuracy(classifier, screened, reference, references)
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


def _runtime_name() -> str:
    from edgepose.runtime.interpreter import find_backend

    return str(find_backend())


def _accuracy(classifier: Classifier, data: Screened, reference: str,
              references: dict[str, _References]
              ) -> tuple[float | None, DriftStats | None, str | None]:
    labels = label_indices(classifier, data.labelled)
    probabilities = np.stack([classifier.predict(x) for x in data.arrays])
    accuracy = float(np.mean(probabilities.argmax(1) == labels))
    if reference == "none":
        return accuracy, None, None
    key = f"{data.labelled.source} {hash(tuple(data.labelled.keys))}"  # same samples only
    refs = references.setdefault(key, _References(data.labelled, reference))
    found = refs.get(classifier.model_path)
    if found is None:
        return accuracy, None, None
    ref_probs, name = found
    if ref_probs.shape != probabilities.shape:
        raise DataError(f"reference outputs have shape {ref_probs.shape}, the model gives "
                        f"{probabilities.shape}", classifier.model_path)
    drift = compare_outputs(ref_probs, probabilities, labels, classifier.labels)
    return accuracy, drift, name
