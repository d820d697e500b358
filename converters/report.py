"""The conversion report: one row per mode, saved as JSON and Markdown, printed as a table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converters.debugger import LayerError
from converters.fallback import FallbackResult
from edgepose.drift import DriftStats
from edgepose.fileio import write_json, write_text


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

    def mode(self, name: str) -> ModeResult:
        return next(m for m in self.modes if m.mode == name)

    def table(self, compact: bool = False) -> tuple[list[str], list[list[Any]]]:
        """Columns and rows of the drift table (``compact`` fits an 80-column terminal)."""
        if compact:
            columns = ["mode", "io", "KB", "acc", "drop", "agree", "max|dp|", "KL", "ms",
                       "XNNPACK"]
        else:
            columns = ["mode", "io", "size KB", "size ratio", "accuracy", "drop pts",
                       "top-1 agree", "mean|dp|", "max|dp|", "KL", "ms (1 thr)", "XNNPACK",
                       "convert s"]
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
                             _num(d.mean_kl if d else None, 4), _num(m.latency_ms, 2), xnn])
                continue
            rows.append([
                m.mode, m.input_dtype, f"{m.size_bytes / 1024:.1f}", f"{m.size_ratio:.3f}",
                _pct(d.accuracy if d else None), _num(m.drop_pct, 2),
                _pct(d.top1_agreement if d else None), _num(d.mean_abs_diff if d else None, 4),
                _num(d.max_abs_diff if d else None, 3), _num(d.mean_kl if d else None, 4),
                _num(m.latency_ms, 2), m.delegation or "", f"{m.conversion_seconds:.1f}"])
        return columns, rows

    def to_markdown(self) -> str:
        columns, rows = self.table()
        lines = [f"# Conversion report: {self.source}", "",
                 f"- task: {self.task}; test samples: {self.test_samples}; Keras accuracy: "
                 f"{_pct(self.keras_accuracy)}",
                 f"- calibration: {self.calibration.get('source')} "
                 f"({self.calibration.get('samples')} samples, seed "
                 f"{self.calibration.get('seed')})",
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
                      "- steps (strategy float layers -> validation drop, points): " + ", ".join(
                          f"{s.strategy} {s.float_layers} -> {s.val_drop_pct:.2f}"
                          for s in fb.steps)]
            lines += [f"  - `{name}`" for name in fb.float_layers]
        if self.failed_modes:
            lines += ["", f"**Over the --max-drop budget: {', '.join(self.failed_modes)}**"]
        return "\n".join(lines) + "\n"

    def save(self, directory: str | Path, stem: str = "conversion_report") -> list[Path]:
        directory = Path(directory)
        return [write_json(directory / f"{stem}.json", self),
                write_text(directory / f"{stem}.md", self.to_markdown())]


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.2f}%"


def _num(value: float | None, digits: int) -> str | None:
    if value is None:
        return None
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text
