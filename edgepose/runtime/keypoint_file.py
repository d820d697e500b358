"""Reading one keypoint sample: a ``.json`` file or a ``"file.csv#<row>"`` row.

The single-sample reader of the device contract: ``edgepose predict`` and the
service read a keypoint file with it, and the dataset loader
(:mod:`edgepose.data.keypoints`) reads every file of a dataset with the same
checks, so a file that trains also predicts and the other way round. File
formats are described in :mod:`edgepose.data.keypoints`. Device-safe: numpy only.
"""

from __future__ import annotations

import csv
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepose.errors import DataError
from edgepose.runtime.layouts import KeypointLayout, get_layout

CSV_META_COLUMNS = ("label", "category", "timestamp", "path", "file", "image", "id")


@dataclass(frozen=True)
class Problem:
    """One file (or CSV row) that was skipped or relabelled, and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

def as_layout(layout: str | KeypointLayout) -> KeypointLayout:
    """The layout object for a layout or its name (ConfigError for an unknown name)."""
    return layout if isinstance(layout, KeypointLayout) else get_layout(layout)


def _check_vector(values, layout: KeypointLayout, where: str | Path,
                  allow_missing: bool = False) -> np.ndarray:
    """Validate a list of numbers against ``layout``; raise DataError with one clear line.

    ``allow_missing``: null and NaN become NaN instead of an error (a "no person"
    vector, see :mod:`edgepose.runtime.presence`); infinity is always an error.
    """
    if not isinstance(values, (list, tuple)):
        raise DataError(f"'keypoints' must be a list of numbers, got {type(values).__name__}",
                        where)
    if len(values) != layout.size:
        raise DataError(f"'keypoints' has {len(values)} numbers, layout {layout.name} needs "
                        f"{layout.size} ({layout.num_joints} joints x {layout.num_channels})",
                        where)
    numbers = []
    for i, v in enumerate(values):
        if v is None and allow_missing:
            v = math.nan
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise DataError(f"'keypoints'[{i}] is not a number ({v!r})", where)
        if math.isinf(v) or (math.isnan(v) and not allow_missing):
            raise DataError(f"'keypoints'[{i}] is {v} (NaN or infinite)", where)
        numbers.append(v)
    return np.asarray(numbers, dtype=np.float32)


def read_keypoint_json(path: str | Path, layout: str | KeypointLayout,
                       allow_missing: bool = False
                       ) -> tuple[np.ndarray, int | None, str | None]:
    """Read one JSON sample: ``(vector float32, label or None, category or None)``.

    ``allow_missing``: null / NaN numbers read as NaN (see :func:`_check_vector`).

    Raises:
        DataError: a missing or empty file, not UTF-8 JSON, not an object with ``keypoints``, a
            ``label`` that is not a non-negative integer, or a malformed vector.
    """
    layout = as_layout(layout)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("file not found", path) from None
    except UnicodeDecodeError:
        raise DataError("not valid JSON (not UTF-8 text)", path) from None
    if not text.strip():
        raise DataError("empty file", path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc})", path) from None
    if not isinstance(data, dict):
        raise DataError(f"expected a JSON object with 'keypoints', got {type(data).__name__}",
                        path)
    if "keypoints" not in data:
        raise DataError("missing field 'keypoints'", path)
    vector = _check_vector(data["keypoints"], layout, path, allow_missing)
    label = data.get("label")
    if label is not None and (isinstance(label, bool) or not isinstance(label, int)
                              or label < 0):
        raise DataError(f"'label' must be a non-negative integer, got {label!r}", path)
    category = data.get("category")
    return vector, label, category if isinstance(category, str) else None


@dataclass(frozen=True)
class _CsvTable:
    vectors: list[np.ndarray | None]
    labels: list[str | None]
    problems: list[Problem]


@functools.lru_cache(maxsize=16)
def _read_csv_cached(path: str, mtime_ns: int, layout_name: str) -> _CsvTable:
    layout = get_layout(layout_name)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            rows = list(reader)
    except UnicodeDecodeError:
        raise DataError("not a CSV text file (not UTF-8)", path) from None
    if not header:
        raise DataError("empty CSV file (no header row)", path)
    header = [h.strip() for h in header]
    lower = [h.lower() for h in header]
    label_col = lower.index("label") if "label" in lower else None
    value_cols = [i for i, h in enumerate(lower) if h not in CSV_META_COLUMNS]
    if len(value_cols) != layout.size:
        raise DataError(f"CSV has {len(value_cols)} keypoint columns, layout {layout.name} needs "
                        f"{layout.size}", path)
    vectors: list[np.ndarray | None] = []
    labels: list[str | None] = []
    problems: list[Problem] = []
    for row_index, row in enumerate(rows):
        where = f"{path}#{row_index}"
        if len(row) != len(header):
            problems.append(Problem(where, f"row has {len(row)} fields, header has "
                                           f"{len(header)}"))
            vectors.append(None)
            labels.append(None)
            continue
        try:
            values = []
            for i in value_cols:
                try:
                    values.append(float(row[i]))
                except ValueError:
                    raise DataError(f"column {header[i]!r} is not a number ({row[i]!r})",
                                    where) from None
            vectors.append(_check_vector(values, layout, where))
        except DataError as exc:
            problems.append(Problem(where, exc.message))
            vectors.append(None)
        labels.append(row[label_col].strip() if label_col is not None else None)
    return _CsvTable(vectors, labels, problems)


def read_csv_table(path: Path, layout: KeypointLayout) -> _CsvTable:
    """Every row of a keypoint CSV, read once per modification time.

    Raises DataError when the file does not exist.
    """
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise DataError("file not found", path) from None
    return _read_csv_cached(str(path), mtime, layout.name)


def load_keypoint_vector(path: str | Path, layout: str | KeypointLayout,
                         allow_missing: bool = False) -> np.ndarray:
    """The float32 keypoint vector of one sample: a ``.json`` file or ``"file.csv#<row>"``.

    ``allow_missing``: a JSON file's null / NaN numbers read as NaN (inference
    then answers "no person") instead of raising :class:`DataError`.

    Raises:
        DataError: the file cannot be read, the CSV has no such row, or the vector is malformed (NaN
            unless ``allow_missing``).
    """
    layout = as_layout(layout)
    text = str(path)
    if "#" in text and text.rsplit("#", 1)[0].lower().endswith(".csv"):
        file_part, row_part = text.rsplit("#", 1)
        table = read_csv_table(Path(file_part), layout)
        try:
            row = int(row_part)
            vector = table.vectors[row]
        except (ValueError, IndexError):
            raise DataError(f"no row {row_part!r} in the CSV", file_part) from None
        if vector is None:
            problem = next(p for p in table.problems if p.path == f"{file_part}#{row}")
            raise DataError(problem.message, problem.path)
        return vector
    return read_keypoint_json(path, layout, allow_missing)[0]
