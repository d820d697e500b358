"""Held-out labelled data that drift is measured on: the run's test split, or ``--eval-data``.

A run directory has a test split the model never trained on; a bare ``.keras``
has none, so without ``--eval-data DIR`` no accuracy or drift can be measured,
and the report and console say so in one line (:data:`NOT_MEASURED`).
``--eval-data`` is a folder of class folders named after the model's labels
(``labels.txt`` beside the model, else ``0``, ``1``, ...), read exactly as the
device reads inputs. It must share no file with the calibration data nor with
a run's train/val split (same content = same sha256, :func:`check_disjoint`):
accuracy on samples the model was fitted or calibrated on is not held-out
accuracy. Unreadable files are skipped and listed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.converters.calibration import CalibrationSet, class_of, data_files, load_files
from edgepose.data.splits import Splits
from edgepose.errors import DataError
from edgepose.fileio import sha256_file

NOT_MEASURED = ("drift not measured: {model} has no test split; pass --eval-data DIR "
                "(class folders of held-out labelled data, none of it in the calibration data) "
                "to measure accuracy and drift per mode")


@dataclass
class HeldOut:
    """Labelled model inputs: ``x`` ``N x ...`` raw (as the device sees them), ``y`` ``N``
    label indices, the files, where they came from, and files skipped (file, reason)."""

    x: np.ndarray
    y: np.ndarray
    files: list[Path]
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def describe(self) -> str:
        """``"all 24 samples of eval/ (--eval-data)"`` (+ how many files were skipped)."""
        skipped = f", {len(self.skipped)} file(s) skipped" if self.skipped else ""
        return f"all {len(self)} samples of {self.source} (--eval-data){skipped}"


def from_eval_folder(folder: str | Path, config: dict[str, Any], labels: list[str]
                     ) -> HeldOut:
    """Read ``folder/<label>/<file>`` for the model's ``labels``.

    Raises DataError (naming the folder) when it is missing, holds files outside
    class folders, a class folder that is not one of ``labels``, or nothing readable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("eval data not found (expected a folder of class folders)", folder)
    files = data_files(folder, config["task"])
    if not files:
        kind = "images" if config["task"] == "image" else "keypoint .json files"
        raise DataError(f"no {kind} in the eval folder", folder)
    classes = [class_of(p, folder) for p in files]
    if "." in classes:
        loose = files[classes.index(".")].name
        raise DataError(f"eval data needs class folders named after the model's labels "
                        f"({', '.join(labels)}); {loose} is not in one", folder)
    unknown = sorted({c for c in classes if c not in labels})
    if unknown:
        raise DataError(f"eval class folder {unknown[0]!r} is not one of the model's labels "
                        f"({', '.join(labels)})", folder)
    loaded = load_files(files, config)
    skipped = [(str(p.relative_to(folder)), reason)
               for p, reason in loaded.skipped + loaded.no_person]
    if not loaded.files:
        raise DataError(f"none of the {len(files)} eval files is readable "
                        f"(e.g. {skipped[0][0]}: {skipped[0][1]})", folder)
    y = np.array([labels.index(class_of(p, folder)) for p in loaded.files], dtype=np.int64)
    # absolute: the report compares where drift was measured across runs of convert
    return HeldOut(loaded.x, y, loaded.files, str(folder.absolute()), skipped)


def _own_hashes(held_out: HeldOut, by_values: bool) -> dict[str, Path]:
    """sha256 -> eval file: of the file, or (``by_values``) of its float32 model input."""
    if not by_values:
        return {sha256_file(p): p for p in held_out.files}
    rows = np.asarray(held_out.x, dtype=np.float32)
    return {hashlib.sha256(rows[i].tobytes()).hexdigest(): p
            for i, p in enumerate(held_out.files)}


def _refuse_shared(held_out: HeldOut, mine: dict[str, Path], used: dict[str, str],
                   what: str, fix: str) -> None:
    shared = [digest for digest in mine if digest in used]
    if shared:
        first = shared[0]
        raise DataError(f"{len(shared)} eval file(s) are also {what} (same content), "
                        f"e.g. {Path(mine[first]).name} = {used[first]}: accuracy on them is "
                        f"not held out; {fix}", held_out.source)


def check_disjoint(held_out: HeldOut, calibration: CalibrationSet | None = None,
                   splits: Splits | None = None) -> None:
    """Raise DataError when a held-out sample is also data the model was fitted on: a file of
    the run's train or val split, or a calibration sample (same sha256 of the file, or of
    the float32 values for a ``.npy`` calibration array)."""
    if splits is not None:
        trained = {sha256_file(splits.absolute(s)): str(splits.absolute(s))
                   for split in ("train", "val") for s in splits.samples(split)}
        _refuse_shared(held_out, _own_hashes(held_out, False), trained,
                       "in the run's train/val split", "give data the model never trained on")
    if calibration is not None:
        _refuse_shared(held_out, _own_hashes(held_out, not calibration.files),
                       calibration.hashes(), "calibration data", "use disjoint folders")


def drift_data(model_path: str | Path, splits_root: str | None, held_out: HeldOut | None,
               test_samples: int) -> tuple[str, bool]:
    """(where drift was measured, whether it was): the eval folder, the run's test split,
    or the :data:`NOT_MEASURED` line naming ``model_path``."""
    if held_out is not None:
        return held_out.describe(), True
    if test_samples:
        return f"all {test_samples} samples of the test split of {splits_root}", True
    return NOT_MEASURED.format(model=model_path), False
