"""``--target host|pi4|pi5``: what "faster" means, and the int8 conversion fastest there.

Speed on a target:

- ``host``: median single-sample invoke time on this machine (1 thread, XNNPACK),
  the figure :func:`edgepose.converters.model_outputs.median_latency_ms` gives;
- ``pi4`` / ``pi5``: instructions per invoke on the emulated Cortex-A72 / Cortex-A76
  (:func:`edgepose.arm.emulated.run_emulated`, 1 thread, XNNPACK; docs/arm.md).
  Exact and independent of the load on this machine; it needs the rig
  (``edgepose arm setup --pi N``) and there is no silent fall-back to host timing.

Whether int8 is fast depends on the model, not only on its architecture. The
XNNPACK delegate takes a quantized ADD only when each input's scale over the
output's scale lies in [1/1024, 256) (``VisitAddNode`` ->
``CheckTensorsInputOutputScale(..., 1.0f / 1024.0f, 256.0f, ...)`` in
tensorflow/lite/delegates/xnnpack/xnnpack_delegate.cc; XNNPACK's own
``xnn_create_add_nd_qs8`` checks the same range). An ADD with a fused RELU6 has an
output range of [0, 6]; when its input spans more than about +-768 (the
``x + 3`` of MobileNetV3's rewritten hard-swish in an untrained network, whose
BatchNorm statistics do not keep activations small) the ratio is out of range,
the ADD stays on the builtin kernel and splits the graph into many partitions.
A quantized SUB is refused the same way (tests/test_converters_target.py builds both).

So :func:`choose_int8` tries the conversions that can fix what it sees, measures
each on the target and keeps the fastest one within the accuracy budget:

- the int8 as converted;
- with the hard-swish rewrite and without it (``--hardswish-rewrite auto`` only);
- each of those with the ops XNNPACK left outside kept float (dequantize ->
  float op -> quantize, which XNNPACK runs; the final SOFTMAX is left alone: it
  runs once per invoke on a handful of values).

Device-safe to import: TensorFlow is imported only by the functions that convert.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgepose.errors import ConfigError

if TYPE_CHECKING:
    from edgepose.converters.conversion_report import ConversionReport, ModeResult
    from edgepose.converters.mode_steps import ConversionContext

TARGETS = ("host", "pi4", "pi5")
# A candidate replaces the int8 as converted only when faster by more than timing noise
# (the same 5 % margin as the conversion report's slower-than-fp32 flag and edgepose bench).
FASTER_MARGIN = 0.05
# Ops that may stay outside XNNPACK without splitting the graph: the final softmax.
TAIL_OPS = frozenset({"SOFTMAX"})


def target_pi(target: str) -> int | None:
    """4 or 5 for ``pi4`` / ``pi5``, None for ``host``.

    Raises:
        ConfigError: ``target`` is not one of :data:`TARGETS`.
    """
    if target not in TARGETS:
        raise ConfigError(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
    return None if target == "host" else int(target[2:])


def require_target(target: str) -> None:
    """Check that speed can be measured on ``target`` before any work starts.

    Raises ConfigError for an unknown target and RuntimeNotAvailable (one line
    naming ``edgepose arm setup --pi N``) when the emulated Pi is not set up.
    """
    pi = target_pi(target)
    if pi is not None:
        from edgepose.arm.rig import require_rig

        require_rig(pi)


def describe_target(target: str) -> str:
    """Where speed is measured, for report lines."""
    pi = target_pi(target)
    if pi is None:
        return "this machine"
    from edgepose.arm.cpus import pi_cpu

    return f"Pi {pi} (emulated {pi_cpu(pi).core})"


def speed_unit(target: str) -> str:
    """``ms`` (median invoke) on the host, ``instructions`` (per invoke) on a Pi."""
    return "ms" if target_pi(target) is None else "instructions"


def measure(paths: list[Path], target: str, sample: np.ndarray, rounds: int = 5,
            runs: int = 10) -> list[float]:
    """Speed of each model on ``target``: lower is faster; one figure per path.

    ``sample``: one raw input without the batch axis. Host: median invoke in ms,
    the models timed in turn over ``rounds`` rounds of ``runs`` invokes each, so a
    change of load hits them alike. Pi: instructions per invoke, one emulator job
    for all models (RuntimeNotAvailable when the rig is not set up).
    """
    pi = target_pi(target)
    if pi is None:
        return _host_ms(paths, sample, rounds, runs)
    from edgepose.arm.emulated import run_emulated

    result = run_emulated([Path(p) for p in paths], pi, np.asarray(sample)[None],
                          kernels=("xnnpack",), warmup=2, repeats=3)
    return [float(run.instructions_per_invoke) for run in result.runs]


def _host_ms(paths: list[Path], sample: np.ndarray, rounds: int, runs: int) -> list[float]:
    from edgepose.bench.stats import time_calls
    from edgepose.runtime.classifier import Classifier

    classifiers = []
    for path in paths:  # timing only: the answer is not read, the pixel range does not matter
        classifier = Classifier.from_file(path, num_threads=1, strict=False)
        classifier.set_input(sample)
        classifier.invoke()
        classifiers.append(classifier)
    times: list[list[int]] = [[] for _ in paths]
    for _ in range(rounds):
        for i, classifier in enumerate(classifiers):
            times[i] += time_calls(lambda _, c=classifier: c.invoke(), runs, warmup=1)
    return [float(np.median(t)) / 1e6 for t in times]


def measure_rows(report: ConversionReport, target: str, sample: np.ndarray,
                 progress: Callable[[str], None] | None = None) -> None:
    """Fill ``instructions_per_invoke`` of the rows made now, on a Pi target (one job).

    Rows already counted on ``target`` are not counted again, so a step that adds
    a row later (auto-fallback) calls this again for its row only. On the host the
    rows already carry their median invoke (``latency_ms``).
    """
    pi = target_pi(target)
    rows = [m for m in report.modes if m.made_at is None and Path(m.path).is_file()
            and m.instructions_target != target]
    if pi is None or not rows:
        return
    if progress:
        progress(f"counting instructions per invoke on {describe_target(target)}: "
                 f"{', '.join(m.mode for m in rows)}")
    for row, count in zip(rows, measure([Path(m.path) for m in rows], target, sample),
                          strict=True):
        row.instructions_per_invoke = int(count)
        row.instructions_target = target


def timing_sample(x: np.ndarray) -> np.ndarray:
    """One raw input to time with, as ``write_mode`` times: the first test sample, else
    zeros of its shape (``x``: ``N x ...``; speed hardly depends on the values)."""
    return x[0] if len(x) else np.zeros(x.shape[1:], np.float32)


def row_speed(row: ModeResult, target: str) -> float | None:
    """A report row's speed on ``target`` (ms or instructions), None when not measured there."""
    if target_pi(target) is None:
        return row.latency_ms
    if getattr(row, "instructions_target", None) != target:
        return None
    return row.instructions_per_invoke


def format_speed(value: float, target: str) -> str:
    """``0.43 ms`` or ``12.30 M instructions``."""
    if target_pi(target) is None:
        return f"{value:.3g} ms"
    return f"{value / 1e6:.2f} M instructions"


@dataclass
class Candidate:
    """One int8 conversion tried for the target, and how it did."""

    name: str
    hardswish_rewrite: bool
    float_ops: dict[str, int] = field(default_factory=dict)  # op type -> nodes kept float
    # output tensor names of the nodes kept float (a denylist for quantize_calibrated):
    # what a later step (auto-fallback) needs to start from this very conversion
    float_nodes: list[str] = field(default_factory=list)
    partitions: int | None = None
    delegation: str | None = None
    ops_outside: dict[str, int] = field(default_factory=dict)
    drop_pct: float | None = None  # accuracy points lost vs Keras on the selection split
    speed: float | None = None  # on the target, see speed_unit
    within_budget: bool = False
    chosen: bool = False


@dataclass
class Int8Choice:
    """Which int8 conversion ``edgepose convert`` kept for the target, and why."""

    target: str
    unit: str  # "ms" (median invoke) or "instructions" (per invoke)
    trigger: str  # why candidates were tried
    selection_split: str  # where each candidate's accuracy was measured
    budget_pct: float  # a candidate may lose at most this many points there
    candidates: list[Candidate] = field(default_factory=list)
    chosen: str | None = None
    reason: str = ""
    fp32_speed: float | None = None

    def markdown(self) -> list[str]:
        """The report section: one row per candidate, then the choice and why."""
        lines = ["", f"## int8 for {describe_target(self.target)}", "",
                 f"- tried because {self.trigger}",
                 f"- accuracy on the {self.selection_split} split, budget "
                 f"{self.budget_pct:.2f} points; speed in {self.unit} per invoke"
                 + (f" (fp32: {format_speed(self.fp32_speed, self.target)})"
                    if self.fp32_speed else ""), "",
                 "| candidate | XNNPACK | points lost | speed | within budget | chosen |",
                 "|---|---|---|---|---|---|"]
        for c in self.candidates:
            speed = "" if c.speed is None else format_speed(c.speed, self.target)
            drop = "" if c.drop_pct is None else f"{c.drop_pct:.2f}"
            lines.append(f"| {c.name} | {c.delegation} | {drop} | {speed} | "
                         f"{c.within_budget} | {'yes' if c.chosen else ''} |")
        lines += ["", f"- chosen: {self.chosen}: {self.reason}"]
        return lines


def int8_choice_from_dict(data: Any) -> Int8Choice | None:
    """An :class:`Int8Choice` from its JSON form (an earlier report); None if unreadable."""
    if not isinstance(data, dict):
        return None
    names = {f.name for f in dataclasses.fields(Candidate)}
    try:
        candidates = [Candidate(**{k: v for k, v in c.items() if k in names})
                      for c in data.get("candidates", [])]
        values = {f.name: data[f.name] for f in dataclasses.fields(Int8Choice)
                  if f.name in data and f.name != "candidates"}
        return Int8Choice(**values, candidates=candidates)
    except (TypeError, AttributeError):
        return None


def needs_candidates(int8: ModeResult, fp32: ModeResult | None, target: str) -> str | None:
    """Why the int8 row should be improved for ``target``, or None when it is fine."""
    outside = {op: n for op, n in int8.ops_outside.items() if op not in TAIL_OPS}
    if outside:
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(outside.items()))
        return f"int8 leaves ops outside XNNPACK ({listed}; {int8.partitions} partitions)"
    mine, theirs = row_speed(int8, target), row_speed(fp32, target) if fp32 else None
    if mine and theirs and mine >= theirs:
        return (f"int8 is not faster than fp32 on {describe_target(target)} "
                f"({format_speed(mine, target)} vs {format_speed(theirs, target)})")
    return None


@dataclass
class TargetJob:
    """What :func:`choose_int8` needs from the conversion in progress.

    ``saved_model(rewritten)``: the fixed-batch SavedModel with (True) or without
    the hard-swish rewrite; ``variants``: the rewrite settings to try;
    ``accuracy_drop(path)``: accuracy points a .tflite loses vs Keras on the
    selection split; ``write_int8(data, settings)``: write ``data`` as the int8
    row (returns the new ModeResult); ``sample``: one raw input for timing.
    """

    saved_model: Callable[[bool], Path]
    variants: list[bool]
    calibration: Any
    io: str
    compat: str | None
    source: Path
    selection_split: str
    accuracy_drop: Callable[[Path], float]
    write_int8: Callable[[bytes, dict], Any]
    sample: np.ndarray
    max_drop: float | None
    progress: Callable[[str], None]


def _delegation(path: Path):
    from edgepose.runtime.delegation import inspect_model

    return inspect_model(path, num_threads=1, use_xnnpack=True)


def candidate_models(job: TargetJob, work: Path) -> list[tuple[Candidate, bytes]]:
    """Every candidate conversion (see the module docstring), converted and inspected."""
    from edgepose.converters.modes import MODES
    from edgepose.converters.tflite import calibrate, convert_mode, quantize_calibrated

    made: list[tuple[Candidate, bytes]] = []
    for rewritten in job.variants:
        saved = job.saved_model(rewritten)
        label = ("int8" if len(job.variants) == 1 else
                 "int8, hard-swish rewrite" if rewritten else "int8, no hard-swish rewrite")
        plain = convert_mode(saved, MODES["int8"], job.calibration, job.io, job.compat,
                             source=job.source)
        made.append((Candidate(label, rewritten), plain))
        path = work / f"plain_{int(rewritten)}.tflite"
        path.write_bytes(plain)
        report = _delegation(path)
        keep = [(op, name) for op, name in report.outside_nodes if op not in TAIL_OPS]
        if not keep:
            continue
        calibrated = calibrate(saved, job.calibration, job.compat, source=job.source)
        data = quantize_calibrated(calibrated, job.io, [name for _, name in keep], job.compat,
                                   job.source)
        counts: dict[str, int] = {}
        for op, _ in keep:
            counts[op] = counts.get(op, 0) + 1
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(counts.items()))
        made.append((Candidate(f"{label}, float {listed}", rewritten, counts,
                               [name for _, name in keep]), data))
    return made


def choose_int8(job: TargetJob, report: ConversionReport, target: str) -> Int8Choice | None:
    """Try the int8 candidates when int8 needs it on ``target``; keep the fastest in budget.

    Returns None when the int8 row is fine (everything but the final softmax in
    XNNPACK, and faster than fp32 on the target, or fp32 not converted), or when
    nothing could change it (all in XNNPACK and no hard-swish rewrite to vary). Otherwise
    every candidate is converted, inspected, measured on the selection split and,
    with fp32 (when converted), on the target in one :func:`measure` call. The
    budget is ``max_drop`` or else what the int8 as converted loses there: no
    candidate trades accuracy for speed behind the user's back. When no candidate
    fits ``max_drop``, the fastest of those losing no more than the int8 as
    converted is kept (int8 is over budget either way; ``--auto-fallback`` starts
    from this choice). A candidate replaces the int8 as converted only when faster
    by more than :data:`FASTER_MARGIN`; the row is then rewritten and its settings
    say which it is (``int8_candidate``, ``hardswish_rewrite``, ``float_ops`` and the
    kept-float tensor names ``float_nodes``).
    """
    int8 = report.mode("int8")
    fp32 = next((m for m in report.modes if m.mode == "fp32"), None)
    trigger = needs_candidates(int8, fp32, target)
    if trigger is None:
        return None
    if len(job.variants) == 1 and not any(op not in TAIL_OPS for op in int8.ops_outside):
        # all in XNNPACK, no rewrite to vary: no conversion to try; the report's speed
        # notes say int8 is slower than fp32 on the target and which mode to use
        return None
    job.progress(f"int8 for {describe_target(target)}: {trigger}; trying candidates")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgepose-target-") as tmp:
        work = Path(tmp)
        made = candidate_models(job, work)
        paths = []
        for i, (candidate, data) in enumerate(made):
            path = work / f"candidate_{i}.tflite"
            path.write_bytes(data)
            paths.append(path)
            delegation = _delegation(path)
            candidate.partitions = delegation.partitions
            candidate.delegation = delegation.summary()
            candidate.ops_outside = dict(delegation.ops_outside)
            candidate.drop_pct = round(job.accuracy_drop(path), 3)
        # fp32 is timed again beside the candidates on the host (same load); on a Pi its
        # instruction count is exact already
        counted = row_speed(fp32, target) if fp32 is not None and target != "host" else None
        timed_fp32 = [Path(fp32.path)] if fp32 is not None and counted is None else []
        speeds = measure(paths + timed_fp32, target, job.sample)
    for (candidate, _), speed in zip(made, speeds, strict=False):
        candidate.speed = speed
    fp32_speed = counted if counted is not None else (speeds[-1] if timed_fp32 else None)
    default = made[0][0]  # variants[0] is the rewrite setting the int8 row was made with
    budget = job.max_drop if job.max_drop is not None else max(default.drop_pct, 0.0)
    for candidate, _ in made:
        candidate.within_budget = candidate.drop_pct <= budget
    choice = Int8Choice(target=target, unit=speed_unit(target), trigger=trigger,
                        selection_split=job.selection_split, budget_pct=budget,
                        candidates=[c for c, _ in made],
                        fp32_speed=fp32_speed)
    fitting = [c for c, _ in made if c.within_budget]
    if not fitting:
        # Nothing fits --max-drop: int8 is over budget whichever is kept (the budget
        # check and auto-fallback take it from there, starting from this choice). Keep
        # the fastest that loses no more than the int8 as converted: a faster start for
        # the fallback, and no accuracy traded for speed.
        fitting = [c for c, _ in made if c.drop_pct <= default.drop_pct]
    best = min(fitting, key=lambda c: c.speed)
    if best is not default and default in fitting \
            and best.speed > default.speed * (1.0 - FASTER_MARGIN):
        best = default  # not faster beyond timing noise: keep what the options asked for
    best.chosen = True
    choice.chosen = best.name
    others = ", ".join(f"{c.name} {format_speed(c.speed, target)}" for c, _ in made
                       if c is not best)
    within = ("within the budget" if best.within_budget else
              "of those losing no more than the int8 as converted (none is within the budget)")
    choice.reason = (f"fastest {within} on {describe_target(target)} "
                     f"({format_speed(best.speed, target)}, {best.delegation}, lost "
                     f"{best.drop_pct:.2f} pts; others: {others})")
    if best is default:
        choice.reason = (f"kept the int8 as converted ({format_speed(best.speed, target)}, "
                         f"{best.delegation}): no other candidate {within} is faster "
                         f"by more than {FASTER_MARGIN:.0%} on {describe_target(target)}"
                         + (f" ({others})" if others else ""))
    else:
        settings = {"hardswish_rewrite": best.hardswish_rewrite,
                    "float_ops": dict(best.float_ops), "float_nodes": list(best.float_nodes),
                    "int8_candidate": best.name, "target": target}
        data = next(d for c, d in made if c is best)
        row = job.write_int8(data, settings)
        # the conversion of the int8 row includes the search that chose it
        row.conversion_seconds = round(int8.conversion_seconds
                                       + time.perf_counter() - started, 2)
        if target_pi(target) is not None:
            # the file differs from the candidate only by its metadata, never executed
            row.instructions_per_invoke = int(best.speed)
            row.instructions_target = target
    job.progress(f"int8 for {describe_target(target)}: chose {choice.chosen}")
    return choice



def selection_drop(ctx) -> tuple[str, Callable[[Path], float]] | None:
    """The split candidates are judged on, and the accuracy points a .tflite LOSES there
    (samples Keras gets right and it gets wrong, see
    :func:`~edgepose.converters.selection.lost_points`).

    The validation split when the run has one (the test split stays held out for
    the report), else the test split (the report says so); None without labels.
    """
    from edgepose.converters.model_outputs import keras_probabilities, tflite_probabilities
    from edgepose.converters.selection import lost_points
    from edgepose.rundir import load_inputs
    from edgepose.runtime.classifier import Classifier

    src = ctx.source
    val = src.splits.samples("val") if src.splits is not None else []
    if val:
        x, y = load_inputs(src.splits, val, src.config)
        split = "val"
    elif len(ctx.reference.x):
        x, y, split = ctx.reference.x, ctx.reference.y, "test"
    else:
        return None
    keras_top1 = keras_probabilities(ctx.model, ctx.contract.normalize(x)).argmax(1)

    def drop(path: Path) -> float:
        # points LOST (Keras right, candidate wrong), as auto-fallback judges: a net
        # difference lets flips both ways cancel (converters/selection.py)
        classifier = Classifier.from_file(path, num_threads=1, stated=ctx.contract.as_stated())
        return lost_points(keras_top1, tflite_probabilities(classifier, x).argmax(1), y)

    return split, drop


def target_step(ctx: ConversionContext, modes: Sequence[str],
                written: dict[str, dict[str, Any]]) -> None:
    """``convert``'s target step, after every mode is written: speed figures and int8 choice.

    Counts instructions per invoke of the new rows on a Pi target
    (:func:`measure_rows`), then lets :func:`choose_int8` replace the int8 row
    when it leaves ops outside XNNPACK or is not faster than fp32 there (only
    with a labelled split to check each candidate's accuracy on). The candidates
    convert the conversion's SavedModel exports (``ctx.exports``; the hard-swish
    rewrite applies to the integer export when the conversion rewrites); a chosen
    candidate is written over the int8 row with the settings it was first written
    with (``written["int8"]``) plus the candidate's.

    Raises:
        RuntimeNotAvailable: a Pi target whose emulated run fails.
        ModelError: a candidate the TFLite converter refuses.
    """
    from edgepose.converters.mode_steps import write_mode  # mode_steps imports options -> here

    report, options, calibration = ctx.report, ctx.options, ctx.calibration
    rewrite, hard_swish = ctx.rewrite, int(ctx.settings.get("hardswish_layers") or 0)
    exported = ctx.exports.get

    def write_int8(data: bytes, extra: dict) -> ModeResult:
        return write_mode(ctx, "int8", data, 0.0, dict(written["int8"], **extra))

    target = options.target
    sample = timing_sample(ctx.reference.x)
    measure_rows(report, target, sample, ctx.progress)
    if "int8" not in modes:
        return
    selection = selection_drop(ctx)
    if selection is None:
        ctx.progress("int8 candidates not tried: no labelled split to check their accuracy")
        return
    # --hardswish-rewrite on/off is the user's choice; auto may try both when it matters
    variants = [rewrite, not rewrite] if (options.hardswish_rewrite == "auto"
                                          and hard_swish > 0) else [rewrite]
    index = next(i for i, m in enumerate(report.modes) if m.mode == "int8")

    def write(data: bytes, settings: dict) -> Any:
        report.modes[index] = write_int8(data, settings)
        ctx.files[:] = list(dict.fromkeys(ctx.files))  # the int8 files, written again
        return report.modes[index]

    job = TargetJob(saved_model=exported, variants=variants, calibration=calibration,
                    io=options.io, compat=options.compat, source=ctx.source.model_path,
                    selection_split=selection[0], accuracy_drop=selection[1], write_int8=write,
                    sample=sample, max_drop=options.max_drop, progress=ctx.progress)
    report.int8_choice = choose_int8(job, report, target)
