"""Writing a run directory (layout in :mod:`edgepose.rundir`), shared by every trainer.

A run is marked incomplete from the moment its directory is created: the file
``INCOMPLETE`` says so (which process writes it and, after a failure, why). A
later run into the same directory replaces an incomplete run whose writer is
gone, without ``--overwrite``. Every file is written
atomically, and the marker is removed only after model.keras, history.csv and
metrics.json are all in place, so a directory without ``INCOMPLETE`` is a
complete run.
"""

from __future__ import annotations

import csv
import io
import os
import platform
import re
import shutil
import socket
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


_IN_PROGRESS = "training in progress"


def in_progress_marker() -> str:
    """The INCOMPLETE text of a live run: which process on which host writes it."""
    return f"{_IN_PROGRESS} (pid {os.getpid()} on {socket.gethostname()})\n"


def _live_writer(marker: str) -> str | None:
    """Who may still be writing the run (from its INCOMPLETE text), or None when nobody.

    A failed run's marker says "run failed"; a killed run's names a pid that no
    longer exists. A pid on another host cannot be checked, so it counts as live.
    """
    found = re.match(rf"{_IN_PROGRESS} \(pid (\d+) on (.+)\)", marker.strip())
    if found is None:
        return None
    pid, host = int(found.group(1)), found.group(2)
    if host != socket.gethostname():
        return f"process {pid} on {host}"
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return None
    except PermissionError:  # it exists, owned by another user
        pass
    return f"process {pid}"


def replace_incomplete_run(path: Path) -> bool:
    """Delete ``path`` when it holds an unfinished run whose writer is gone.

    True when a failed or killed run was removed. Raises ConfigError when another
    process may still be writing it (its pid and host are in the marker).
    """
    marker = path / INCOMPLETE
    if not marker.is_file():
        return False
    writer = _live_writer(marker.read_text(encoding="utf-8", errors="replace"))
    if writer is not None:
        raise ConfigError(f"run directory {path} is being written by {writer} "
                          "(wait for it, or pass --overwrite if that run is dead)")
    shutil.rmtree(path)
    return True


def check_run_dir(path: str | Path, *, overwrite: bool = False) -> None:
    """Raise the ConfigError :class:`RunWriter` would raise for ``path``, without writing.

    Trainers call it before the long steps (scanning the data), so a refused
    ``--output`` fails in a second, not after minutes.

    Raises:
        ConfigError: ``path`` is not empty, or another live process is writing it (unless
            ``overwrite``).
    """
    path = Path(path)
    if overwrite or not path.exists():
        return
    marker = path / INCOMPLETE
    if marker.is_file():
        writer = _live_writer(marker.read_text(encoding="utf-8", errors="replace"))
        if writer is not None:
            raise ConfigError(f"run directory {path} is being written by {writer} "
                              "(wait for it, or pass --overwrite if that run is dead)")
        return
    if any(path.iterdir()):
        raise ConfigError(f"run directory {path} already exists and is not empty "
                          "(choose another --output or pass --overwrite)")


class RunWriter:
    """Writes one run directory, file by file, each atomically.

    Use as a context manager: on an exception the ``INCOMPLETE`` marker stays,
    with the error in it.
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False):
        self.path = Path(path)
        # A run that failed (or was killed) is replaced without --overwrite: rerunning
        # the same command must just work. A live run is never replaced.
        self.replaced_incomplete = not overwrite and replace_incomplete_run(self.path)
        if self.path.exists() and any(self.path.iterdir()) and not overwrite:
            raise ConfigError(f"run directory {self.path} already exists and is not empty "
                              "(choose another --output or pass --overwrite)")
        self.path.mkdir(parents=True, exist_ok=True)
        write_text(self.path / INCOMPLETE, in_progress_marker())

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:
            write_text(self.path / INCOMPLETE,
                       f"run failed: {exc.__class__.__name__}: {exc}\n")

    def write_config(self, config: dict[str, Any]) -> Path:
        """config.json: must hold ``task`` (and ``preprocessing`` or ``keypoint_layout``).

        Raises:
            ValueError: ``config['task']`` is neither 'image' nor 'keypoints'.
        """
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
        """Remove the INCOMPLETE marker once every file is written.

        Raises:
            RuntimeError: a required file was not written (a bug in the trainer, not a user
                mistake).
        """
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
