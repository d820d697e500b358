"""The conversion report: one row per mode, saved as JSON and Markdown, printed as a table.

The report accumulates: ``edgepose convert RUN --int16x8`` after a full
conversion keeps the earlier fp32/fp16/dynamic/int8 rows
(:meth:`ConversionReport.merge_previous`). Every row is stamped with when it
was made (UTC) and the sha256 of the source model it was made from. A row of
an earlier report whose source hash differs from the model converted now (the
model was retrained), or whose ``.tflite`` is gone, is DROPPED from the table
and listed under ``stale`` with the reason: its accuracy and latency describe
another model, and a table mixing the two would flatter or slander the current
one. Re-convert that mode to get it back.

Speed is judged on ``--target`` (:mod:`edgepose.converters.target`): by default the
machine that converted (median invoke, 1 thread,
XNNPACK, :func:`edgepose.converters.model_outputs.median_latency_ms`), or the
instructions per invoke counted on an emulated Pi 4 / Pi 5: a mode slower than fp32
is flagged with the fastest mode that loses no more accuracy (or fits
``--max-drop``), and int16x8 with no node in
XNNPACK is labelled a reference-kernel mode with its cost relative to int8
and fp32 (:meth:`ConversionReport.speed_notes`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepose.converters.debugger import LayerError
from edgepose.converters.fallback import FallbackResult
from edgepose.errors import DataError
from edgepose.fileio import read_json, write_json, write_text
from edgepose.rundir import RunDir
from edgepose.runtime.drift_stats import DriftStats

if TYPE_CHECKING:
    from edgepose.converters.target import Int8Choice

# A mode counts as slower than fp32 only beyond timing noise (same margin as edgepose bench).
SLOWER_MARGIN = 0.05
# Canonical row order: the converter's modes, then the int8 fallback.
_ORDER = ("fp32", "fp16", "dynamic", "int8", "int16x8", "int8-fallback")


@dataclass
class ModeResult:
    """One converted model and how it compares with the Keras model."""

    mode: str
    path: str
    size_bytes: int
    size_ratio: float  # file size / float32 weight bytes of the Keras model
    conversion_seconds: float
    input_dtype: str
    output_dtype: str
    drift: DriftStats | None = None
    latency_ms: float | None = None  # median, 1 thread, XNNPACK, this machine
    partitions: int | None = None  # XNNPACK delegate partitions
    delegated_nodes: int | None = None
    total_nodes: int | None = None
    ops_outside: dict[str, int] = field(default_factory=dict)  # ops on builtin kernels
    delegation: str | None = None  # one-line summary
    float_layers: list[str] = field(default_factory=list)  # int8-fallback only
    made_at: str | None = None  # UTC, ISO 8601, when this row's model was converted
    source_sha256: str | None = None  # of the source model this row was made from
    drift_data: str | None = None  # where its drift was measured (the report's, when made)
    instructions_per_invoke: int | None = None  # on the emulated Pi of --target pi4|pi5
    instructions_target: str | None = None  # "pi4" | "pi5": where that count was made

    @property
    def drop_pct(self) -> float | None:
        """Accuracy points lost vs Keras on the test split (negative = gained)."""
        if self.drift is None or self.drift.accuracy_delta is None:
            return None
        return -100.0 * self.drift.accuracy_delta


@dataclass
class ConversionReport:
    """Everything one ``edgepose convert`` did."""

    source: str
    source_sha256: str
    task: str
    test_samples: int
    keras_accuracy: float | None
    calibration: dict[str, Any]
    settings: dict[str, Any]
    modes: list[ModeResult] = field(default_factory=list)
    layer_errors: list[LayerError] | None = None
    fallback: FallbackResult | None = None
    failed_modes: list[str] = field(default_factory=list)  # over --max-drop
    versions: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    stale: list[StaleRow] = field(default_factory=list)  # earlier rows dropped, and why
    notes: list[str] = field(default_factory=list)  # speed flags (see speed_notes)
    # Where accuracy and drift were measured ("all 30 samples of the test split of runs/x",
    # "... of eval/ (--eval-data)"), or the one line saying they were not (and how to get them).
    drift_data: str | None = None
    drift_measured: bool = True
    eval_skipped: list[dict[str, str]] = field(default_factory=list)  # {file, reason}

    def data_notes(self) -> list[str]:
        """What the data behind this report lacks, one line each: drift not measured,
        calibration/eval files skipped (unreadable, no person), calibration warnings
        (:meth:`~edgepose.converters.calibration.CalibrationSet.check_classes`)."""
        notes = [] if self.drift_measured or not self.drift_data else [self.drift_data]
        for what, rows in (("calibration", self.calibration.get("skipped") or []),
                           ("eval", self.eval_skipped)):
            if rows:
                listed = "; ".join(f"{r['file']} ({r['reason']})" for r in rows)
                notes.append(f"{len(rows)} {what} file(s) skipped: {listed}")
        notes += list(self.calibration.get("warnings") or [])
        return notes
    int8_choice: Int8Choice | None = None  # int8 candidates tried for --target, and why

    def mode(self, name: str) -> ModeResult:
        return next(m for m in self.modes if m.mode == name)

    def stamp(self, when: float | None = None) -> None:
        """Stamp rows made by this conversion (no ``made_at`` yet) with the time and source."""
        made_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
        for row in self.modes:
            if row.made_at is None:
                row.made_at = made_at
            if row.source_sha256 is None:
                row.source_sha256 = self.source_sha256
            if row.drift_data is None:
                row.drift_data = self.drift_data

    def merge_previous(self, directory: str | Path,
                       stem: str = RunDir.CONVERSION_REPORT) -> None:
        """Keep the rows of the report already in ``directory`` for modes not converted now.

        Kept: rows made from the same source sha256 whose model file still exists and
        whose drift was measured on the same data. Dropped into :attr:`stale` (with the
        reason): rows from another source, rows whose file is gone, rows measured on
        other data (the test split vs ``--eval-data``, or not at all), an int8-fallback
        row when int8 is converted again now (it was built on the earlier int8), and a
        previous report that cannot be read. A kept int8 / int8-fallback row keeps its
        report section (``int8_choice`` / ``fallback``).
        """
        path = Path(directory) / f"{stem}.json"
        if not path.is_file():
            return
        self.stamp()
        try:
            previous = read_json(path)
            rows = previous.get("modes", [])
            default_sha = previous.get("source_sha256")
        except (DataError, AttributeError) as exc:
            self.stale.append(StaleRow("?", str(path), None, None, f"unreadable report ({exc})"))
            return
        done = {m.mode for m in self.modes}
        now = frozenset(done)  # converted by this conversion
        for data in rows:
            try:
                row = mode_result_from_dict(data, default_sha)
            except (TypeError, KeyError, AttributeError) as exc:
                self.stale.append(StaleRow(str(data.get("mode", "?")) if isinstance(data, dict)
                                           else "?", str(path), None, None,
                                           f"unreadable row ({exc})"))
                continue
            if row.mode in done:
                continue  # converted again now
            reason = None
            if row.source_sha256 != self.source_sha256:
                reason = (f"made from source sha256 {str(row.source_sha256)[:12]}, the model "
                          f"is now {self.source_sha256[:12]}")
            elif not Path(row.path).is_file():
                reason = "its model file is gone"
            elif row.drift_data is not None and _short(row.drift_data) != _short(
                    self.drift_data):
                # accuracy and drift on other data do not belong in one table
                reason = (f"its drift was measured on other data ({_short(row.drift_data)}), "
                          f"this report's on {_short(self.drift_data)}")
            elif row.mode == "int8-fallback" and "int8" in now:
                # it was built on the earlier int8 (its export, its float ops), not this one
                reason = ("it was built on an earlier int8 conversion and int8 was converted "
                          "again now")
            if reason is not None:
                self.stale.append(StaleRow(row.mode, row.path, row.made_at, row.source_sha256,
                                           reason))
                continue
            self.modes.append(row)
            done.add(row.mode)
            if row.mode == "int8" and self.int8_choice is None:  # and why it is that int8
                from edgepose.converters.target import int8_choice_from_dict

                self.int8_choice = int8_choice_from_dict(previous.get("int8_choice"))
            if row.mode == "int8-fallback" and self.fallback is None:  # and how it was made
                from edgepose.converters.fallback import fallback_result_from_dict

                self.fallback = fallback_result_from_dict(previous.get("fallback"))
        self.modes.sort(key=lambda m: _ORDER.index(m.mode) if m.mode in _ORDER else len(_ORDER))

    def speed_notes(self) -> list[str]:
        """Speed flags measured on ``--target`` (see the module docstring)."""
        from edgepose.converters.target import describe_target, format_speed, row_speed

        notes = []
        target = self.settings.get("target") or "host"

        def speed(m: ModeResult) -> float | None:
            return row_speed(m, target)

        timed = [m for m in self.modes if speed(m)]
        fp32 = next((m for m in timed if m.mode == "fp32"), None)
        budget = self.settings.get("max_drop")
        for row in timed:
            if fp32 is None or row is fp32:
                continue
            ratio = speed(row) / speed(fp32)
            if ratio > 1.0 + SLOWER_MARGIN:
                # The fastest mode that loses no more accuracy than this one (or fits
                # --max-drop): never trade accuracy for speed behind the user's back.
                allowed = max(_drop(row), budget or 0.0)
                fastest = min((m for m in timed if _drop(m) <= allowed), key=speed)
                drop = "" if fastest.drop_pct is None else f", drop {_num(fastest.drop_pct, 2)} pts"
                if target != "host":
                    notes.append(f"{row.mode} is {ratio:.2f}x slower than fp32 on "
                                 f"{describe_target(target)} ({speed(row) / 1e6:.2f} vs "
                                 f"{speed(fp32) / 1e6:.2f} M instructions per invoke, 1 thread, "
                                 f"XNNPACK): use {fastest.mode} there "
                                 f"({format_speed(speed(fastest), target)}{drop})")
                    continue
                notes.append(f"{row.mode} is {ratio:.2f}x slower than fp32 on this machine "
                             f"({row.latency_ms:.3g} vs {fp32.latency_ms:.3g} ms median invoke, "
                             f"1 thread, XNNPACK): use {fastest.mode} here "
                             f"({fastest.latency_ms:.3g} ms{drop})")
        int16 = next((m for m in self.modes if m.mode == "int16x8"), None)
        if int16 is not None and int16.delegated_nodes == 0:
            costs = [f"{int16.latency_ms / other.latency_ms:.1f}x {other.mode}"
                     for other in timed if other.mode in ("int8", "fp32") and int16.latency_ms]
            notes.append(f"int16x8 is a reference-kernel mode: 0/{int16.total_nodes} nodes run "
                         "in XNNPACK" + (f"; invoke {int16.latency_ms:.3g} ms = "
                                         f"{', '.join(costs)} on this machine" if costs else ""))
        from edgepose.converters.fallback import outside_notes

        notes += outside_notes(self.modes)
        for row in self.stale:
            flag = ("--int8 --max-drop N --auto-fallback" if row.mode == "int8-fallback"
                    else f"--{row.mode}")  # there is no --int8-fallback flag
            notes.append(f"{row.mode} row of the earlier report dropped: {row.reason}; "
                         f"re-convert with {flag} to report it")
        return notes

    def table(self, compact: bool = False) -> tuple[list[str], list[list[Any]]]:
        """Columns and rows of the drift table (``compact`` fits an 80-column terminal)."""
        if compact:
            columns = ["mode", "io", "KB", "acc", "drop", "agree", "max|dp|", "KL", "ms",
                       "XNNPACK"]
            if self._pi_target():  # the speed column is the target's (80 columns stay 80)
                columns[columns.index("ms")] = f"Minsn {self._pi_target()}"
        else:
            columns = ["mode", "io", "size KB", "size ratio", "accuracy", "drop pts",
                       "top-1 agree", "mean|dp|", "max|dp|", "KL", "ms (1 thr)", "XNNPACK",
                       "convert s"]
            columns += ([f"M instructions/invoke ({self._pi_target()})"]
                        if self._pi_target() else [])
        rows = []
        for m in self.modes:
            d = m.drift
            if compact:
                xnn = ("-" if m.partitions is None else
                       f"{m.partitions}p {m.delegated_nodes}/{m.total_nodes}")
                rows.append([m.mode, m.input_dtype, f"{m.size_bytes / 1024:.0f}",
                             _pct(d.accuracy if d else None), _num(m.drop_pct, 2),
                             _pct(d.top1_agreement if d else None),
                             _num(d.max_abs_diff if d else None, 3),
                             _num(d.mean_kl if d else None, 4),
                             (self._instruction_cells(m) or [_num(m.latency_ms, 2)])[0], xnn])
                continue
            rows.append([
                m.mode, m.input_dtype, f"{m.size_bytes / 1024:.1f}", f"{m.size_ratio:.3f}",
                _pct(d.accuracy if d else None), _num(m.drop_pct, 2),
                _pct(d.top1_agreement if d else None), _num(d.mean_abs_diff if d else None, 4),
                _num(d.max_abs_diff if d else None, 3), _num(d.mean_kl if d else None, 4),
                _num(m.latency_ms, 2), m.delegation or "", f"{m.conversion_seconds:.1f}"]
                + self._instruction_cells(m))
        return columns, rows

    def _pi_target(self) -> str | None:
        """``pi4`` / ``pi5`` when speed is judged on an emulated Pi, else None."""
        target = self.settings.get("target") or "host"
        return None if target == "host" else target

    def _instruction_cells(self, m: ModeResult) -> list[str | None]:
        target = self._pi_target()
        if target is None:
            return []
        count = m.instructions_per_invoke if m.instructions_target == target else None
        return [None if count is None else f"{count / 1e6:.3f}"]

    def to_markdown(self) -> str:
        columns, rows = self.table()
        measured = (f"drift measured on {self.drift_data or f'{self.test_samples} samples'}"
                    if self.drift_measured else self.drift_data)
        lines = [f"# Conversion report: {self.source}", "",
                 f"- task: {self.task}; {measured}; Keras accuracy: "
                 f"{_pct(self.keras_accuracy)}",
                 "- calibration: " + (self.calibration.get("sample") or
                                      f"{self.calibration.get('source')} "
                                      f"({self.calibration.get('samples')} samples, seed "
                                      f"{self.calibration.get('seed')})") + _classes(
                     self.calibration.get("class_counts")),
                 f"- settings: {self.settings}",
                 f"- versions: {self.versions}", "",
                 "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |"
                  for row in rows]
        per_class = [m for m in self.modes if m.drift and m.drift.per_class_accuracy_delta]
        if per_class:
            classes = list(per_class[0].drift.per_class_accuracy_delta)
            lines += ["", "## Per-class accuracy delta vs Keras (points)", "",
                      "| mode | " + " | ".join(classes) + " |",
                      "|" + "---|" * (len(classes) + 1)]
            for m in per_class:
                deltas = m.drift.per_class_accuracy_delta
                lines.append(f"| {m.mode} | " + " | ".join(
                    f"{100 * deltas.get(c, 0.0):+.1f}" for c in classes) + " |")
        if self.layer_errors:
            lines += ["", "## Worst int8 layers (QuantizationDebugger, float I/O variant)", "",
                      "| op | tensor | rmse/scale | cosine |", "|---|---|---|---|"]
            for e in self.layer_errors[:15]:
                lines.append(f"| {e.op} | `{e.tensor}` | {e.rmse_over_scale:.3f} | "
                             f"{e.cosine:.4f} |")
        if self.fallback is not None:
            fb = self.fallback
            lines += ["", "## int8 auto-fallback", "",
                      f"- within budget: {fb.within_budget}; layers kept float: "
                      f"{len(fb.float_layers)} (strategy: {fb.strategy})",
                      "- steps (strategy float layers -> validation points lost, Keras right and "
                      "candidate wrong): " + ", ".join(
                          f"{s.strategy} {s.float_layers} -> {s.val_drop_pct:.2f}"
                          for s in fb.steps)]
            lines += [f"  - `{name}`" for name in fb.float_layers]
            if fb.start is not None:  # what every candidate kept float besides its layers
                from edgepose.converters.fallback import speed_line

                lines += [f"- started from {fb.start.describe()}; every candidate keeps "
                          "those ops float too"] + speed_line(
                              self.modes, self.settings.get("target") or "host")
        data_notes = [note for note in self.data_notes() if note != self.drift_data]
        if data_notes:
            lines += ["", "## Data warnings", ""] + [f"- {note}" for note in data_notes]
        if self.int8_choice is not None:
            lines += self.int8_choice.markdown()
        if self.failed_modes:
            lines += ["", f"**Over the --max-drop budget: {', '.join(self.failed_modes)}**"]
        notes = self.notes or self.speed_notes()
        if notes:
            lines += ["", "## Speed and staleness on "
                      + ("this machine" if self._pi_target() is None
                         else f"the emulated {self._pi_target()}"), ""]
            lines += [f"- {note}" for note in notes]
        lines += ["", "## Where each row comes from", ""] if self.modes else []
        lines += [f"- {m.mode}: made {m.made_at or 'at an unknown time'} from source sha256 "
                  f"{(m.source_sha256 or self.source_sha256)[:12]}" for m in self.modes]
        return "\n".join(lines) + "\n"

    def save(self, directory: str | Path, stem: str = RunDir.CONVERSION_REPORT) -> list[Path]:
        """Stamp the new rows, compute :attr:`notes`, write JSON and Markdown atomically."""
        directory = Path(directory)
        self.stamp()
        self.notes = self.speed_notes()
        return [write_json(directory / f"{stem}.json", self),
                write_text(directory / f"{stem}.md", self.to_markdown())]


@dataclass
class StaleRow:
    """A row of an earlier report that no longer describes the current model."""

    mode: str
    path: str
    made_at: str | None
    source_sha256: str | None
    reason: str


def mode_result_from_dict(data: dict[str, Any], default_sha256: str | None = None
                          ) -> ModeResult:
    """A :class:`ModeResult` from its JSON form; rows without a source hash get the report's.

    Unknown keys are ignored (a newer edgepose may add some); a missing required
    key raises TypeError.
    """
    names = {f.name for f in dataclasses.fields(ModeResult)}
    values = {k: v for k, v in data.items() if k in names}
    if isinstance(values.get("drift"), dict):
        drift_names = {f.name for f in dataclasses.fields(DriftStats)}
        values["drift"] = DriftStats(**{k: v for k, v in values["drift"].items()
                                        if k in drift_names})
    row = ModeResult(**values)
    if row.source_sha256 is None:
        row.source_sha256 = default_sha256
    return row


def _drop(row: ModeResult) -> float:
    """Accuracy points lost vs Keras, 0 when not measured (no test split)."""
    return row.drop_pct if row.drop_pct is not None else 0.0


def _classes(counts: dict[str, int] | None) -> str:
    """``"; classes: bright 6, dark 6"`` (files per class folder), or "" when unknown."""
    if not counts:
        return ""
    return "; classes: " + ", ".join(f"{'(no class folder)' if name == '.' else name} {n}"
                                     for name, n in counts.items())


def _short(drift_data: str | None) -> str:
    """The "where drift was measured" text, "none" for the not-measured line."""
    if drift_data is None or drift_data.startswith("drift not measured"):
        return "none"
    return drift_data


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.2f}%"


def format_points(drop_pct: float) -> str:
    """An accuracy drop in points as the report prints it: ``0.37``, ``0.00`` (never ``-0.00``)."""
    return _num(drop_pct, 2) or ""


def _num(value: float | None, digits: int) -> str | None:
    if value is None:
        return None
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text
