"""Representative data for calibrated modes: never the test split.

By default a class-stratified, seeded sample of the run's TRAIN split, loaded
exactly as the device loads inputs (:func:`edgepose.rundir.load_inputs`).
``--calib-data`` points at other data instead: a folder of images (flat or
class folders), a folder of keypoint JSON files, or a ``.npy`` array of values
the model takes as they are (already in its input contract, e.g. 0..1).
Images are mapped through the model's input contract; every set is checked
against it (:meth:`CalibrationSet.check_values`).

What a folder says is read and judged (:meth:`CalibrationSet.check_classes`):
one class folder for a model with several classes is refused (int8 ranges
calibrated on one class clip the activations of the others) unless the user
says ``--allow-one-class``; heavy imbalance, missing classes, a folder with no
class folders and fewer than :data:`FEW_SAMPLES` samples are warned about, in
the console and the report. An unreadable file (truncated, empty, not an image,
unreadable JSON) or keypoint file holding no person is skipped and listed
(:attr:`CalibrationSet.skipped`), never dropped silently; a folder with nothing
readable is an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.data.splits import Sample, Splits
from edgepose.errors import ConversionError, DataError
from edgepose.fileio import sha256_file
from edgepose.rundir import load_inputs
from edgepose.runtime.input_contract import InputContract
from edgepose.runtime.preprocess import IMAGE_SUFFIXES, ImagePreprocessing, image_to_array
from edgepose.sampling import SampleChoice, stratified_indices, take

# TFLite's post-training quantization guide: the representative dataset "can be a
# small subset (around ~100-500 samples) of the training or validation data"
# (tensorflow/lite/g3doc/performance/post_training_quantization.md). Fewer is warned.
FEW_SAMPLES = 100
# Largest / smallest class folder above this is warned: stratified sampling keeps the
# folder's proportions, so the int8 ranges follow the big class. 10x is edgepose's
# choice (no published threshold), the point where a class is under 10% of another.
IMBALANCE_RATIO = 10.0
FLAT = "."  # the class key of files directly in the calibration folder (no class folder)


@dataclass
class CalibrationSet:
    """Model inputs used to calibrate activation ranges, and where they came from."""

    x: np.ndarray  # N x <model input shape without batch>
    source: str  # "train split of <run>" or the folder given
    paths: list[str] = field(default_factory=list)
    # "pixels": RGB 0..255 images, to be mapped through the input contract
    # (:meth:`to_model_values`); "model": values the model takes as they are (.npy, keypoints).
    domain: str = "model"
    choice: SampleChoice | None = None  # which samples of how many were taken
    # class folder -> files the folder holds (all of them, before sampling); None when the
    # data carries no classes (.npy). Files directly in the folder count as class ".".
    class_counts: dict[str, int] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, one-line reason)
    warnings: list[str] = field(default_factory=list)  # from check_classes, for the report
    files: list[Path] = field(default_factory=list)  # absolute paths of the files used

    @property
    def description(self) -> str:
        """How many samples of how many, how drawn, from where (for reports)."""
        text = self.choice.describe() if self.choice else f"{len(self)} samples from {self.source}"
        if self.skipped:  # the choice counts files; say how many could be read
            text += f", {len(self.skipped)} unreadable skipped: {len(self)} used"
        return text

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def representative_dataset(self, limit: int | None = None):
        """A callable for ``TFLiteConverter.representative_dataset`` (batches of one)."""
        x = self.x[:limit] if limit else self.x

        def generate():
            for i in range(x.shape[0]):
                yield [x[i:i + 1].astype(np.float32)]

        return generate

    def check_shape(self, input_shape: tuple[int, ...], model_path: str | Path) -> None:
        """Check that the samples (``N x ...``) fit the model's input shape (without the
        batch), before any conversion work.

        Raises:
            ConversionError: the shapes differ (both named; a hint when only the axis order
                differs, e.g. channels-first data for a channels-last model).
        """
        got, expected = tuple(self.x.shape[1:]), tuple(input_shape)
        if got != expected:
            # e.g. N x 3 x H x W for an N x H x W x 3 model: say so, it is the usual mix-up
            hint = ("; the same sizes in another order: transpose the array to the model's "
                    "layout" if sorted(got) == sorted(expected) else "")
            raise ConversionError(f"calibration data from {self.source} has sample shape {got}"
                                  f" but the model expects {expected}{hint}", model_path)


    def to_model_values(self, contract: InputContract) -> CalibrationSet:
        """Pixels mapped through ``contract`` (float32); model values are left as they are."""
        if self.domain != "pixels":
            return self
        return dataclasses.replace(self, x=contract.normalize(self.x), domain="model")

    def check_classes(self, labels: list[str], allow_one_class: bool = False) -> list[str]:
        """Judge what the data says about the model's ``labels``; return warnings (also kept
        in :attr:`warnings`).

        Raises DataError when the data has exactly one class folder for a model with
        several classes (unless ``allow_one_class``). Warns: fewer than
        :data:`FEW_SAMPLES` samples; largest/smallest class over :data:`IMBALANCE_RATIO`;
        class folders named after the model's labels that leave some out; no class
        folders at all (flat folder, ``.npy``), where coverage cannot be checked.
        """
        warnings = []
        counts = self.class_counts
        folders = {k: v for k, v in (counts or {}).items() if k != FLAT}
        if len(folders) == 1 and len(labels) > 1:
            name, count = next(iter(folders.items()))
            if not allow_one_class:
                raise DataError(
                    f"calibration data has one class folder ({name!r}, {count} files) for a "
                    f"model with {len(labels)} classes: int8 ranges calibrated on one class "
                    "clip the others; add the other classes, or pass --allow-one-class",
                    self.source)
            warnings.append(f"calibration has one class folder ({name!r}) for a model with "
                            f"{len(labels)} classes (--allow-one-class)")
        if counts is None:
            warnings.append("calibration data carries no classes (.npy): edgepose cannot check "
                            "that it covers every class")
        elif not folders:
            warnings.append("calibration folder has no class folders: edgepose cannot check "
                            "that it covers every class")
        if len(folders) > 1:
            big, small = max(folders, key=folders.get), min(folders, key=folders.get)
            ratio = folders[big] / folders[small]
            if ratio > IMBALANCE_RATIO:
                warnings.append(f"calibration classes are unbalanced: {big!r} has "
                                f"{folders[big]} files, {small!r} {folders[small]} "
                                f"({ratio:.3g}x, warned above {IMBALANCE_RATIO:.3g}x)")
        named = set(folders) & set(labels)
        if named and len(folders) > 1:
            missing = [label for label in labels if label not in folders]
            if missing:
                warnings.append(f"calibration has no class folder for {len(missing)} of the "
                                f"model's {len(labels)} classes: {', '.join(missing)}")
        if len(self) < FEW_SAMPLES:
            warnings.append(f"calibration uses only {len(self)} samples; TFLite's "
                            "post-training quantization guide suggests about 100-500")
        self.warnings = warnings
        return warnings

    def hashes(self) -> dict[str, str]:
        """sha256 -> file (or ``.npy`` row) of every sample used: what held-out data must
        not share (rows hash their float32 bytes)."""
        if self.files:
            return {sha256_file(path): str(path) for path in self.files}
        rows = np.asarray(self.x, dtype=np.float32)
        return {hashlib.sha256(rows[i].tobytes()).hexdigest(): f"{self.source} row {name}"
                for i, name in enumerate(self.paths)}

    def report_fields(self) -> dict[str, Any]:
        """What the report keeps of this set beyond source/count: classes, skipped, warnings."""
        return {"class_counts": self.class_counts,
                "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
                "warnings": list(self.warnings)}

    def check_values(self, contract: InputContract, path: str | Path) -> None:
        """Refuse NaN/inf, and values far from the contract's range (e.g. 0..1 data for a
        0..255 model), naming ``path`` (the data) and both ranges.

        "Far" means the data reaches more than 10% of the contract's span beyond it, or
        spans less than 2% of it (0..1 in a 0..255 contract spans 0.4%): int8 ranges
        calibrated on such data clip or waste almost every quantization level.

        Raises:
            DataError: a NaN/inf value, or a range far from the contract's (both named).
        """
        x = np.asarray(self.x)
        if np.issubdtype(x.dtype, np.floating):
            bad = ~np.isfinite(x)
            if bad.any():
                first = int(np.argwhere(bad.reshape(len(x), -1).any(axis=1))[0, 0])
                raise ConversionError(f"calibration data has {int(bad.sum())} NaN/inf values "
                                      f"(first in sample {first}); int8 ranges would be "
                                      "meaningless", path)
        expected = contract.value_range
        if expected is None or x.size == 0:
            return
        lo, hi = expected
        span = hi - lo
        low, high = float(x.min()), float(x.max())
        if low < lo - 0.1 * span or high > hi + 0.1 * span or (high - low) < 0.02 * span:
            raise ConversionError(
                f"calibration data spans {low:.4g}..{high:.4g} but the model's input contract "
                f"is {lo:.4g}..{hi:.4g} ({contract.describe()}); give data in the contract's "
                "range, or state the contract with --input-range / --input-mean/--input-std",
                path)


def stratified_sample(samples: list[Sample], n: int, seed: int = 0) -> list[Sample]:
    """Up to ``n`` samples, every class in proportion, seeded (:mod:`edgepose.sampling`)."""
    return take(samples, stratified_indices([s.label for s in samples], n, seed))


def from_run(splits: Splits, config: dict[str, Any], n: int = 200, seed: int = 0
             ) -> CalibrationSet:
    """A stratified sample of the TRAIN split, preprocessed as on the device.

    Raises:
        DataError: the run's train split is empty, or a chosen sample cannot be read.
    """
    train = splits.samples("train")
    if not train:
        raise DataError("the run's train split is empty; pass --calib-data",
                        Path(splits.root))
    source = f"train split of {splits.root}"
    choice = stratified_indices([s.label for s in train], n, seed, source)
    chosen = take(train, choice)
    x, _ = load_inputs(splits, chosen, config)
    counts = {name: count for name, count in splits.counts()["train"].items() if count}
    return CalibrationSet(x, source, [s.path for s in chosen],
                          "pixels" if config["task"] == "image" else "model", choice,
                          class_counts=counts, files=[splits.absolute(s) for s in chosen])


def read_npy(path: str | Path) -> np.ndarray:
    """An ``N x ...`` numeric array of samples from a ``.npy`` file.

    Raises:
        DataError: (naming the file) unreadable, not numeric, or not ``N x ...`` with N > 0.
    """
    path = Path(path)
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"not a readable .npy array ({exc})", path) from None
    if x.ndim < 2 or x.shape[0] == 0:
        raise DataError(f"expected an N x ... array of samples, got shape {x.shape}", path)
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"expected a numeric array, got dtype {x.dtype}", path)
    return x


def data_files(folder: Path, task: str) -> list[Path]:
    """Images (image task) or keypoint ``.json`` files under ``folder``, sorted, hidden
    files and folders left out."""
    suffixes = IMAGE_SUFFIXES if task == "image" else (".json",)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def class_of(path: Path, folder: Path) -> str:
    """The class folder of ``path`` under ``folder`` (``"."`` for a file directly in it)."""
    return path.relative_to(folder).parent.as_posix()


@dataclass
class LoadedFiles:
    """Model inputs read from files: ``x`` (N x ...), the files they came from, what was
    skipped and why, and (keypoints) the files that hold no person, left out."""

    x: np.ndarray
    files: list[Path]
    skipped: list[tuple[Path, str]]
    no_person: list[tuple[Path, str]] = field(default_factory=list)


def load_files(files: list[Path], config: dict[str, Any]) -> LoadedFiles:
    """Read ``files`` as the device does, skipping (and listing) the unreadable ones.

    Images -> uint8 ``N x H x W x C`` through the runtime's preprocessing (any Pillow
    mode becomes 8-bit RGB there: greyscale, CMYK, 16-bit, palette; then luma ``L``,
    C = 1, for a greyscale model, else C = 3); keypoint JSON ->
    float32 ``N x D``, "no person" vectors (all zero, NaN, too few joints) left out:
    they are never classified, and training leaves them out too.
    """
    skipped: list[tuple[Path, str]] = []
    rows, kept = [], []
    if config["task"] == "image":
        spec = ImagePreprocessing.from_dict(config["preprocessing"])
        for path in files:
            try:
                rows.append(image_to_array(path, spec))
                kept.append(path)
            except DataError as exc:
                skipped.append((path, exc.message))
        shape = (spec.height, spec.width, spec.channels)
        x = np.stack(rows) if rows else np.zeros((0, *shape), dtype=np.uint8)
        return LoadedFiles(x, kept, skipped)
    from edgepose.runtime.keypoint_file import load_keypoint_vector
    from edgepose.runtime.layouts import get_layout
    from edgepose.runtime.presence import no_person_reason

    layout = get_layout(config["keypoint_layout"])
    no_person: list[tuple[Path, str]] = []
    for path in files:
        try:
            vector = load_keypoint_vector(path, layout, allow_missing=True)
        except DataError as exc:
            skipped.append((path, exc.message))
            continue
        reason = no_person_reason(vector, layout)
        if reason is not None:
            no_person.append((path, reason))
            continue
        rows.append(vector)
        kept.append(path)
    x = np.stack(rows).astype(np.float32) if rows else np.zeros((0, layout.size),
                                                                dtype=np.float32)
    return LoadedFiles(x, kept, skipped, no_person)


def from_folder(folder: str | Path, config: dict[str, Any], n: int = 200, seed: int = 0
                ) -> CalibrationSet:
    """Calibration samples from a folder (images or keypoint JSON, flat or in class folders)
    or a ``.npy`` array of model inputs.

    Unreadable files among those chosen are skipped and listed in
    :attr:`CalibrationSet.skipped`.

    Raises:
        DataError: ``folder`` is neither a folder nor a ``.npy`` file; the folder holds no
            images or keypoint files, or none of the chosen ones is readable; a bad ``.npy``.
    """
    folder = Path(folder)
    if folder.is_file() and folder.suffix == ".npy":
        x = read_npy(folder)
        choice = stratified_indices([0] * x.shape[0], n, seed, str(folder))
        return CalibrationSet(x[choice.indices], str(folder),
                              [str(i) for i in choice.indices], "model", choice)
    if not folder.is_dir():
        raise DataError("calibration data not found (expected a folder or a .npy file)", folder)
    task = config["task"]
    files = data_files(folder, task)
    if not files:
        kind = "images" if task == "image" else "keypoint .json files"
        raise DataError(f"no {kind} in the calibration folder", folder)
    classes = [class_of(p, folder) for p in files]
    counts = dict(sorted(Counter(classes).items()))
    # Class folders (or the flat folder, as one class) keep their proportions.
    choice = stratified_indices(classes, n, seed, str(folder))
    loaded = load_files(take(files, choice), config)
    skipped = [(str(p.relative_to(folder)), reason)
               for p, reason in loaded.skipped + loaded.no_person]
    if not loaded.files:
        if not loaded.skipped:
            path, reason = loaded.no_person[0]
            raise DataError(f"all {len(loaded.no_person)} keypoint files hold no person "
                            f"(e.g. {path.name}: {reason})", folder)
        path, reason = loaded.skipped[0]
        raise DataError(f"none of the {len(loaded.skipped)} calibration files chosen is readable "
                        f"(e.g. {path.relative_to(folder)}: {reason})", folder)
    return CalibrationSet(loaded.x, str(folder), [str(p.relative_to(folder))
                                                  for p in loaded.files],
                          "pixels" if task == "image" else "model", choice,
                          class_counts=counts, skipped=skipped, files=loaded.files)
