"""Writing a run directory (layout in :mod:`edgepose.rundir`), shared by every trainer.

A run is marked incomplete from the moment its directory is created: the file
``INCOMPLETE`` says so (and, after a failure, why). Every file is written
atomically, and the marker is removed only after model.keras, history.csv and
metrics.json are all in place, so a directory without ``INCOMPLETE`` is a
complete run.
"""

from __future__ import annotations

import csv
import io
import platform
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from edgepose.data.splits import Splits
from edgepose.errors import ConfigError
from edgepose.fileio import atomic_path, write_json, write_text
from edgepose.rundir import RunDir
from edgepose.train.training import HISTORY_KEYS, TrainingHistory

INCOMPLETE = "INCOMPLETE"


def default_run_dir(dataset: str | Path, model_name: str, *, root: str | Path = "models",
                    now: datetime | None = None) -> Path:
    """``models/<dataset>-<model>-<YYYYmmdd-HHMMSS>``."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    dataset_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(dataset).resolve().name) or "data"
    return Path(root) / f"{dataset_name}-{model_name}-{stamp}"


def versions() -> dict[str, str]:
    """Library versions that affect training results, for config.json."""
    import numpy

    from edgepose import __version__
    from edgepose.keras_quiet import keras
    from edgepose.keras_quiet import tf as tensorflow

    return {"edgepose": __version__, "python": sys.version.split()[0],
            "tensorflow": tensorflow.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "platform": platform.platform()}


def is_complete(run_dir: str | Path) -> bool:
    """True when the run finished writing (config, model, metrics, no INCOMPLETE marker)."""
    run_dir = Path(run_dir)
    return (not (run_dir / INCOMPLETE).exists()
            and all((run_dir / name).is_file()
                    for name in RunDir.TRAINED_FILES))


class RunWriter:
    """Writes one run directory, file by file, each atomically.

    Use as a context manager: on an exception the ``INCOMPLETE`` marker stays,
    with the error in it.
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False):
        self.path = Path(path)
        if self.path.exists() and any(self.path.iterdir()) and not overwrite:
            raise ConfigError(f"run directory {self.path} already exists and is not empty "
                              "(choose another --output or pass --overwrite)")
        self.path.mkdir(parents=True, exist_ok=True)
        write_text(self.path / INCOMPLETE, "training in progress\n")

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:
            write_text(self.path / INCOMPLETE,
                       f"run failed: {exc.__class__.__name__}: {exc}\n")

    def write_config(self, config: dict[str, Any]) -> Path:
        """config.json: must hold ``task`` (and ``preprocessing`` or ``keypoint_layout``)."""
        if config.get("task") not in ("image", "keypoints"):
            raise ValueError("config needs task 'image' or 'keypoints'")
        return write_json(self.path / RunDir.CONFIG, config)

    def write_splits(self, splits: Splits) -> Path:
        return splits.save(self.path / RunDir.SPLITS)

    def write_labels(self, classes: list[str]) -> Path:
        return write_text(self.path / RunDir.LABELS, "".join(f"{c}\n" for c in classes))

    def save_model(self, model) -> Path:
        """model.keras: the inference model (raw input in, probabilities out)."""
        target = self.path / RunDir.KERAS_MODEL
        with atomic_path(target) as tmp:
            model.save(str(tmp))
        return target

    def write_history(self, history: TrainingHistory) -> Path:
        """history.csv: one row per epoch, all stages, atomically."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["stage", "epoch", "lr", *HISTORY_KEYS],
                                lineterminator="\n")
        writer.writeheader()
        for row in history.rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        return write_text(self.path / RunDir.HISTORY, buffer.getvalue())

    def write_metrics(self, metrics: Any) -> Path:
        return write_json(self.path / RunDir.METRICS, metrics)

    def finish(self) -> Path:
        """Remove the INCOMPLETE marker once every file is written."""
        missing = [n for n in RunDir.TRAINED_FILES if not (self.path / n).is_file()]
        if missing:
            raise RuntimeError(f"run directory {self.path} lacks {', '.join(missing)}")
        (self.path / INCOMPLETE).unlink(missing_ok=True)
        return self.path


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a history.csv with numbers parsed (empty cells -> None)."""
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            parsed: dict[str, Any] = {}
            for key, value in row.items():
                if key == "stage":
                    parsed[key] = value
                elif value in ("", None):
                    parsed[key] = None
                else:
                    parsed[key] = float(value)
            rows.append(parsed)
    return rows
