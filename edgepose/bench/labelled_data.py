"""The labelled samples a bench scores: a class-folder directory or a run's split, screened.

:func:`folder_data` and :func:`split_data` find the files and their class names;
:func:`screen` prepares each one with the classifier once and sets aside the ones
it cannot read (each with a one-line reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepose.bench.results import SkippedInput
from edgepose.errors import DataError, EdgeposeError
from edgepose.rundir import RunDir
from edgepose.runtime.classifier import Classifier
from edgepose.runtime.preprocess import IMAGE_SUFFIXES
from edgepose.sampling import SampleChoice, stratified_indices, take


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


def folder_data(root: str | Path) -> LabelledData:
    """A class-folder directory: ``root/<class>/<file>`` (images or keypoint JSON).

    Raises:
        DataError: ``root`` is not a directory, or has no class folder with images or keypoint
            files.
    """
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
    """The ``split`` samples of the run directory the model sits in.

    Raises:
        DataError: the model's folder is not a run directory, or the split is empty.
    """
    run = RunDir.open(Path(model_path).parent)
    splits = run.splits
    samples = splits.samples(split)
    if not samples:
        raise DataError(f"the {split} split is empty", run.splits_path)
    return LabelledData([splits.absolute(s) for s in samples],
                        [splits.classes[s.label] for s in samples], [s.path for s in samples],
                        f"{run.splits_path}:{split}", run.path)


def label_indices(classifier: Classifier, data: LabelledData) -> np.ndarray:
    """Each sample's class as an index into the model's labels: ``N`` int64.

    Raises:
        DataError: a class of the data is not a label of the model (both are named).
    """
    index = {name: i for i, name in enumerate(classifier.labels)}
    missing = sorted(set(data.class_names) - set(index))
    if missing:
        raise DataError(f"classes {missing} of the data are not labels of "
                        f"{classifier.model_path.name} ({classifier.labels})", data.source)
    return np.array([index[name] for name in data.class_names], dtype=np.int64)


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
