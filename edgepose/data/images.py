"""Folder-per-class image datasets: scan, verify every image, split.

Two layouts are understood::

    DATA/<class>/<image>               split here, stratified and seeded
    DATA/train/<class>/<image>         the user's own split is kept; a missing
    DATA/val/<class>/<image>           val/ or test/ is carved out of train/
    DATA/test/<class>/<image>          with the same stratified rule

Class names are the folder names, sorted; label ``i`` is ``classes[i]``.
Every image is decoded once with :func:`edgepose.runtime.preprocess.load_rgb`;
files that do not decode are collected as :class:`Problem` s (or, with
``strict``, raised together as one :class:`DataError`). Device-safe: the
perceptual hashes for the leak check are computed only if ``imagehash`` is
installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from edgepose.data.dedupe import (
    HASH_INPUT_SIDE,
    HashPair,
    LeakReport,
    find_leaks,
    hashes_available,
    image_hash,
    remove_leaks,
)
from edgepose.data.splits import SPLIT_NAMES, Sample, Splits, stratified_split
from edgepose.errors import ConfigError, DataError
from edgepose.runtime.preprocess import IMAGE_SUFFIXES, load_rgb

# Folder names accepted for each split in the predefined layout.
_SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
_MAX_LISTED = 20  # problems spelled out in a strict-mode error


@dataclass
class Problem:
    """One image file that was skipped, and why."""

    path: str
    reason: str


@dataclass
class ImageDatasetReport:
    """What :func:`build_image_splits` found: the split, skipped files, leaks."""

    splits: Splits
    problems: list[Problem]
    leaks: LeakReport | None
    predefined_splits: bool
    ignored: list[str] = field(default_factory=list)  # files without an image suffix
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few human-readable lines: counts, skipped files, leaks, notes."""
        counts = {split: len(self.splits.samples(split)) for split in SPLIT_NAMES}
        how = ("existing train/val/test folders" if self.predefined_splits
               else f"stratified split, seed {self.splits.seed}")
        lines = [f"{self.splits.root}: {len(self.splits.items)} images, "
                 f"{len(self.splits.classes)} classes (train {counts['train']} / "
                 f"val {counts['val']} / test {counts['test']}; {how})"]
        if self.problems:
            lines.append(f"skipped {len(self.problems)} unreadable file(s):")
            lines += [f"  {p.path}: {p.reason}" for p in self.problems]
        if self.ignored:
            lines.append(f"ignored {len(self.ignored)} file(s) without an image suffix")
        if self.leaks is not None:
            lines.append(self.leaks.summary())
        lines += self.notes
        return "\n".join(lines)


def _visible(entry: os.DirEntry | Path) -> bool:
    # Hidden files include macOS "._x.jpg" resource forks, which are not images.
    return not entry.name.startswith(".")


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _visible(p))


def _image_files(folder: Path, ignored: list[Path]) -> list[Path]:
    """Image files anywhere under ``folder`` (sorted); other files go to ``ignored``."""
    found = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        # Symlinked folders are followed, but a link back to an ancestor must not loop.
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            (found if path.suffix.lower() in IMAGE_SUFFIXES else ignored).append(path)
    return found


def _split_folders(root: Path) -> dict[str, Path] | None:
    """The predefined-split folders of ``root``, or None for a folder-per-class layout.

    ``DATA/train`` counts as a split folder only when it holds class folders
    (a class that happens to be called "train" holds images).
    """
    train = root / "train"
    if not train.is_dir() or not _subdirs(train):
        return None
    found = {"train": train}
    for split in ("val", "test"):
        for name in _SPLIT_FOLDERS[split]:
            if (root / name).is_dir():
                found[split] = root / name
                break
    known = {name for names in _SPLIT_FOLDERS.values() for name in names}
    stray = [p.name for p in _subdirs(root) if p.name not in known]
    if stray:
        raise DataError(f"has a train/ split folder but also other folders ({', '.join(stray)}); "
                        "put every class inside train/, val/ and test/", root)
    return found


@dataclass
class _Candidate:
    path: Path
    rel: str
    class_name: str
    split: str | None
    folder: Path  # the class folder, for error messages


def _collect(root: Path, layout: dict[str, Path] | None,
             ignored: list[Path]) -> tuple[list[_Candidate], dict[str, Path]]:
    """All image files with their class (and split), plus each class's folder."""
    candidates: list[_Candidate] = []
    class_folders: dict[str, Path] = {}
    sources = ([(split, folder) for split, folder in layout.items()] if layout
               else [(None, root)])
    for split, parent in sources:
        for entry in sorted(parent.iterdir()):
            if not _visible(entry):
                continue
            if entry.is_file():
                ignored.append(entry)  # loose file outside any class folder
                continue
            class_folders.setdefault(entry.name, entry)
            files = _image_files(entry, ignored)
            if not files:
                raise DataError("class folder has no image files "
                                f"({', '.join(IMAGE_SUFFIXES)})", entry)
            candidates += [_Candidate(f, f.relative_to(root).as_posix(), entry.name, split,
                                      entry) for f in files]
    return candidates, class_folders


def _inspect(path: Path, want_hash: bool) -> tuple[str | None, HashPair | None]:
    """Decode one image: ``(reason it failed, None)`` or ``(None, hash or None)``.

    Decoded as the trainer and the hash use it, reduced to about
    :data:`HASH_INPUT_SIDE` (a 12 MP JPEG at 1/8): the whole file is still read,
    so a truncated or unreadable one fails here as it would in training.
    """
    try:
        image = load_rgb(path, reduce_to=(HASH_INPUT_SIDE, HASH_INPUT_SIDE))
    except DataError as exc:
        return exc.message, None
    except Image.DecompressionBombError as exc:
        return f"too large to decode safely ({exc})", None
    return None, image_hash(image) if want_hash else None


def _verify(candidates: list[_Candidate], want_hash: bool,
            on_progress: Callable[[int, int], None] | None = None,
            ) -> tuple[list[_Candidate], list[Problem], dict[str, HashPair]]:
    # Pillow releases the GIL while decoding, so a few threads use both cores.
    workers = min(4, os.cpu_count() or 1)
    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(lambda c: _inspect(c.path, want_hash), candidates,
                               chunksize=64):
            results.append(result)
            if on_progress is not None:
                on_progress(len(results), len(candidates))
    good, problems, hashes = [], [], {}
    for candidate, (reason, pair) in zip(candidates, results, strict=True):
        if reason is not None:
            problems.append(Problem(candidate.rel, reason))
            continue
        good.append(candidate)
        if pair is not None:
            hashes[candidate.rel] = pair
    return good, problems, hashes


def _strict_error(root: Path, problems: list[Problem]) -> DataError:
    listed = "; ".join(f"{p.path}: {p.reason}" for p in problems[:_MAX_LISTED])
    more = f"; and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    return DataError(f"{len(problems)} unreadable image file(s) (strict mode): {listed}{more}",
                     root)


def _check_classes(root: Path, good: list[_Candidate], class_folders: dict[str, Path],
                   predefined: bool) -> list[str]:
    classes = sorted(class_folders)
    if len(classes) < 2:
        found = f" ({classes[0]})" if classes else ""
        raise DataError(f"found {len(classes)} class folder{found}; a classifier needs at "
                        "least 2 (DATA/<class>/<images>)", root)
    totals = {name: 0 for name in classes}
    in_train = {name: 0 for name in classes}
    for candidate in good:
        totals[candidate.class_name] += 1
        in_train[candidate.class_name] += candidate.split == "train"
    for name in classes:
        if totals[name] < 2:
            raise DataError(f"class {name!r} has {totals[name]} readable image(s); "
                            "every class needs at least 2", class_folders[name])
        if predefined and in_train[name] == 0:
            raise DataError(f"class {name!r} has no readable images in train/",
                            root / "train" / name)
    return classes


def _fill_missing_splits(labels: list[int], given: list[str | None],
                         fractions: tuple[float, float, float], seed: int,
                         present: set[str]) -> list[str]:
    """Keep the given splits; carve any missing val/test out of train, stratified."""
    missing = [split for split in ("val", "test") if split not in present]
    if not missing:
        return [split or "train" for split in given]
    train_idx = [i for i, split in enumerate(given) if split == "train"]
    share = {"train": fractions[0]}
    for split in missing:
        share[split] = fractions[SPLIT_NAMES.index(split)]
    total = sum(share.values())
    if total <= 0:
        return [split or "train" for split in given]
    carve = tuple(share.get(split, 0.0) / total for split in SPLIT_NAMES)
    carved = stratified_split([labels[i] for i in train_idx], carve, seed)
    result = [split or "train" for split in given]
    for index, split in zip(train_idx, carved, strict=True):
        result[index] = split
    return result


def build_image_splits(root: str | Path, *, seed: int = 0,
                       fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                       strict: bool = False, check_leaks: bool = True, dedupe: bool = False,
                       leak_threshold: int = 4,
                       on_progress: Callable[[int, int], None] | None = None,
                       ) -> ImageDatasetReport:
    """Scan a folder-per-class image dataset, verify every image and split it.

    ``fractions`` (train, val, test) apply per class with ``seed`` unless DATA
    already has ``train/`` (+ ``val/``, ``test/``) folders, which are kept.
    Unreadable files are skipped and listed in ``problems`` (``strict=True``
    raises :class:`DataError` instead). ``check_leaks`` counts val/test images
    with a perceptual near-twin in an earlier split; ``dedupe`` also moves them
    into their twin's split. Raises :class:`DataError` for a missing or empty
    folder, fewer than 2 classes, or a class with fewer than 2 readable images.
    ``on_progress(decoded, total)`` is called after each image is decoded.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError("dataset folder not found", root)
    if not root.is_dir():
        raise DataError("not a folder (expected DATA/<class>/<images>)", root)
    root = root.resolve()
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3:
        raise ConfigError(f"fractions must be (train, val, test), got {fractions}")
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ConfigError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    if not _subdirs(root):
        raise DataError("no class folders found (expected DATA/<class>/<images>)", root)

    layout = _split_folders(root)
    ignored: list[Path] = []
    candidates, class_folders = _collect(root, layout, ignored)
    notes: list[str] = []
    want_leaks = check_leaks or dedupe
    if want_leaks and not hashes_available():
        if dedupe:
            raise ConfigError("dedupe needs the imagehash package: pip install 'edgepose[train]'")
        notes.append("leak check skipped: imagehash is not installed "
                     "(pip install 'edgepose[train]')")
        want_leaks = False

    good, problems, hashes = _verify(candidates, want_leaks, on_progress)
    if strict and problems:
        raise _strict_error(root, problems)
    classes = _check_classes(root, good, class_folders, layout is not None)
    good.sort(key=lambda c: c.rel)
    label_of = {name: index for index, name in enumerate(classes)}
    labels = [label_of[c.class_name] for c in good]
    if layout is None:
        assignment = stratified_split(labels, fractions, seed)
        extra = {"layout": "folders"}
    else:
        assignment = _fill_missing_splits(labels, [c.split for c in good], fractions, seed,
                                          set(layout))
        carved = [split for split in ("val", "test") if split not in layout]
        extra = {"layout": "predefined", "carved_from_train": carved}
        if carved:
            notes.append(f"no {'/'.join(carved)} folder: carved from train/ (seed {seed})")
    items = [Sample(c.rel, label, split)
             for c, label, split in zip(good, labels, assignment, strict=True)]
    splits = Splits(task="image", root=str(root), classes=classes, items=items, seed=seed,
                    fractions=fractions, extra=extra)

    leaks = None
    if want_leaks:
        if dedupe:
            splits, leaks = remove_leaks(splits, leak_threshold, hashes)
        else:
            leaks = find_leaks(splits, leak_threshold, hashes)
    empty = [name for name, n in splits.counts()["test"].items() if n == 0]
    if empty:
        notes.append(f"no test images for class(es) {', '.join(empty)}")
    return ImageDatasetReport(splits=splits, problems=problems, leaks=leaks,
                              predefined_splits=layout is not None,
                              ignored=[p.relative_to(root).as_posix() for p in ignored],
                              notes=notes)
