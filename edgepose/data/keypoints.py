"""Keypoint datasets: JSON files in class folders, or CSV tables.

JSON, one sample per file::

    ROOT/<category>/<class folder>/*.json
    {"keypoints": [x0, y0, x1, y1, ...], "label": 0, "category": "stance", "timestamp": ...}

``ROOT/<class folder>/*.json`` (no category level) works too. ``label`` is
optional: the folder decides it when the file has none. When files do carry
labels, the folder -> label mapping is the one most files in each folder agree
on (so both "0 = correct" and "1 = correct" datasets load as written) and every
file that disagrees with its folder is reported; the folder wins.

CSV, one row per sample, with a header: a ``label`` column (class index or
name) and one column per number of the keypoint vector; ``category``,
``timestamp``, ``path``, ``file``, ``image`` and ``id`` columns are ignored.
A CSV sample's path is ``"file.csv#<row>"`` (row counted from 0 after the header).

Broken files (not JSON, missing fields, wrong length for the layout, NaN/inf)
are reported one line each and skipped; ``strict=True`` makes any problem an
error. Device-safe: numpy only.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edgepose.data.splits import Sample, Splits, stratified_split
from edgepose.errors import DataError
from edgepose.runtime.keypoint_file import (  # noqa: F401  (Problem etc.: the dataset API)
    CSV_META_COLUMNS,
    Problem,
    load_keypoint_vector,
    read_csv_table,
    read_keypoint_json,
)
from edgepose.runtime.layouts import KeypointLayout, get_layout
from edgepose.runtime.presence import no_person_reason


@dataclass
class KeypointDatasetReport:
    """The splits of a keypoint dataset and every problem found while reading it."""

    splits: Splits
    problems: list[Problem] = field(default_factory=list)
    skipped: int = 0  # files/rows left out because they could not be read

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        return self.splits.counts()

    def summary(self) -> str:
        """What was read, before training: per split and class the sample counts, then one
        line per problem (the file and why it was left out)."""
        classes = self.splits.classes
        lines = [f"{len(classes)} classes: {', '.join(classes)}"]
        for split, per_class in self.counts.items():
            total = sum(per_class.values())
            if total:
                lines.append(f"{split}: {total} samples ("
                             + ", ".join(f"{c} {n}" for c, n in per_class.items()) + ")")
        if self.skipped:
            lines.append(f"{self.skipped} file(s) or row(s) left out:")
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


def _has_json(folder: Path) -> bool:
    return any(folder.glob("*.json"))


def _categories(root: Path) -> dict[str, Path]:
    """Category name -> folder. A root whose subfolders hold JSON files is one category."""
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if any(_has_json(d) for d in subdirs) or any(root.glob("*.csv")):
        return {root.name: root}
    return {d.name: d for d in subdirs
            if any(_has_json(c) for c in d.iterdir() if c.is_dir()) or any(d.glob("*.csv"))}


def keypoint_categories(root: str | Path) -> list[str]:
    """Category names of a keypoint dataset, sorted: the subfolders of ``ROOT`` that hold
    class folders of JSON files or CSV tables; ``[ROOT's name]`` when ``ROOT`` itself holds
    the class folders (no category level). Raises :class:`DataError` when the folder is
    missing or holds no keypoint data in either layout."""
    root = Path(root)
    if not root.is_dir():
        raise DataError("keypoint dataset folder not found", root)
    found = sorted(_categories(root))
    if not found:
        raise DataError("no keypoint data: expected ROOT/<class>/*.json, "
                        "ROOT/<category>/<class>/*.json or a CSV table", root)
    return found


def detect_layout(root: str | Path, category: str | None = None, sample: int = 64) -> str:
    """The keypoint layout of a dataset's files, for training without ``--layout``.

    The ``"layout"`` that files record (``keypoints extract`` and ``data poses``
    write it), else the one layout whose vector length matches (28 numbers:
    body14, 34: coco17, 132: mediapipe33). Reads up to ``sample`` JSON files
    per category and the header of each CSV. Raises :class:`DataError` when the
    files record different layouts or no layout has their length.
    """
    from edgepose.runtime.layouts import LAYOUTS, layout_for_length

    root = Path(root)
    folders = _categories(root) if root.is_dir() else {}
    if category is not None and category in folders:
        folders = {category: folders[category]}
    recorded: Counter[str] = Counter()
    lengths: Counter[int] = Counter()
    for folder in folders.values():
        files = sorted(folder.glob("*/*.json"))[:sample]
        for path in files:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            if not isinstance(data, dict):
                continue
            if isinstance(data.get("layout"), str) and data["layout"] in LAYOUTS:
                recorded[data["layout"]] += 1
            elif isinstance(data.get("keypoints"), list) and data["keypoints"]:
                lengths[len(data["keypoints"])] += 1
        for csv_path in sorted(folder.glob("*.csv")):
            try:
                with open(csv_path, newline="", encoding="utf-8") as fh:
                    header = next(csv.reader(fh), [])
            except (OSError, UnicodeDecodeError):
                continue
            lengths[sum(h.strip().lower() not in CSV_META_COLUMNS for h in header)] += 1
    if len(recorded) > 1:
        raise DataError(f"the files record different layouts ({', '.join(sorted(recorded))}); "
                        "give --layout", root)
    if recorded:
        return next(iter(recorded))
    if not lengths:
        raise DataError("no keypoint files: expected ROOT/<category>/<class>/*.json, "
                        "ROOT/<class>/*.json or *.csv", root)
    length = lengths.most_common(1)[0][0]
    found = layout_for_length(length)
    if found is None:
        sizes = ", ".join(f"{name} {layout.size}" for name, layout in sorted(LAYOUTS.items()))
        raise DataError(f"no layout has {length} numbers per sample ({sizes}); give --layout",
                        root)
    return found.name


@dataclass
class _Entry:
    path: str  # relative to the dataset root
    class_name: str


def _read_category(root: Path, folder: Path, category: str, layout: KeypointLayout,
                   problems: list[Problem]) -> tuple[list[_Entry], list[str], int]:
    """Entries of one category and its class names in label order."""
    skipped = 0
    # JSON in class folders
    files: dict[str, list[tuple[Path, int | None]]] = {}
    for class_dir in sorted(d for d in folder.iterdir() if d.is_dir()
                            and not d.name.startswith(".")):
        for path in sorted(class_dir.glob("*.json")):
            try:
                vector, label, file_category = read_keypoint_json(path, layout,
                                                                  allow_missing=True)
            except DataError as exc:
                problems.append(Problem(str(path.relative_to(root)), exc.message))
                skipped += 1
                continue
            reason = no_person_reason(vector, layout)
            if reason is not None:
                problems.append(Problem(str(path.relative_to(root)), reason + "; left out"))
                skipped += 1
                continue
            if file_category is not None and file_category != category and folder != root:
                problems.append(Problem(str(path.relative_to(root)),
                                        f"file says category {file_category!r}, folder is "
                                        f"{category!r}"))
            files.setdefault(class_dir.name, []).append((path, label))
    class_names = _class_order(files)
    entries: list[_Entry] = []
    for class_name, items in files.items():
        expected = class_names.index(class_name)
        for path, label in items:
            rel = str(path.relative_to(root))
            if label is not None and label != expected:
                problems.append(Problem(rel, f"label {label} in the file disagrees with folder "
                                             f"{class_name!r} (label {expected}); using the "
                                             "folder"))
            entries.append(_Entry(rel, class_name))
    # CSV tables
    for csv_path in sorted(folder.glob("*.csv")):
        table = read_csv_table(csv_path, layout)
        rel = str(csv_path.relative_to(root))
        for p in table.problems:
            problems.append(Problem(rel + "#" + p.path.rsplit("#", 1)[1], p.message))
        skipped += len(table.problems)
        for row, (vector, label) in enumerate(zip(table.vectors, table.labels, strict=True)):
            if vector is None:
                continue
            reason = no_person_reason(vector, layout)
            if reason is not None:
                problems.append(Problem(f"{rel}#{row}", reason + "; left out"))
                skipped += 1
                continue
            if not label:
                problems.append(Problem(f"{rel}#{row}", "no label"))
                skipped += 1
                continue
            if label.isdigit() and int(label) < len(class_names):
                label = class_names[int(label)]
            entries.append(_Entry(f"{rel}#{row}", label))
            if label not in class_names:
                class_names.append(label)
    return entries, class_names, skipped


def _class_order(files: dict[str, list[tuple[Path, int | None]]]) -> list[str]:
    """Class folders in label order: the labels the files agree on, else sorted names."""
    folders = sorted(files)
    majority: dict[str, int] = {}
    for name in folders:
        labels = Counter(label for _, label in files[name] if label is not None)
        if labels:
            majority[name] = labels.most_common(1)[0][0]
    if len(majority) == len(folders) and sorted(majority.values()) == list(range(len(folders))):
        return sorted(folders, key=majority.__getitem__)
    return folders


def build_keypoint_splits(root: str | Path, *, layout: str, category: str | None = None,
                          seed: int = 0,
                          fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                          strict: bool = False) -> KeypointDatasetReport:
    """Read a keypoint dataset and split it train/val/test, stratified by label.

    ``category`` picks one category folder (one model per category); ``None``
    takes every category, with classes named ``"<category>/<class>"`` when
    there is more than one.

    Raises:
        DataError: the folder is missing or holds no keypoint files, an unknown ``category``, no
            readable sample, fewer than 2 classes, or (``strict``) any problem in the dataset.
    """
    layout_obj = get_layout(layout)
    root = Path(root)
    if not root.is_dir():
        raise DataError("keypoint dataset folder not found", root)
    categories = _categories(root)
    if not categories:
        raise DataError("no keypoint files: expected ROOT/<category>/<class>/*.json, "
                        "ROOT/<class>/*.json or *.csv", root)
    if category is not None:
        if category not in categories:
            raise DataError(f"no category {category!r}; found {', '.join(sorted(categories))}",
                            root)
        categories = {category: categories[category]}
    problems: list[Problem] = []
    classes: list[str] = []
    entries: list[_Entry] = []
    skipped = 0
    for name, folder in categories.items():
        cat_entries, cat_classes, cat_skipped = _read_category(root, folder, name, layout_obj,
                                                               problems)
        skipped += cat_skipped
        prefix = f"{name}/" if len(categories) > 1 else ""
        classes.extend(prefix + c for c in cat_classes)
        entries.extend(_Entry(e.path, prefix + e.class_name) for e in cat_entries)
    if strict and problems:
        raise DataError(f"{len(problems)} problem(s) in the dataset (strict mode); first: "
                        f"{problems[0]}", root)
    if not entries:
        first = f"; {len(problems)} problem(s), first: {problems[0]}" if problems else ""
        raise DataError(f"no readable keypoint samples{first}", root)
    used = [c for c in classes if any(e.class_name == c for e in entries)]
    if len(used) < 2:
        raise DataError(f"need at least 2 classes with samples, found {used}", root)
    labels = [used.index(e.class_name) for e in entries]
    assignment = stratified_split(labels, fractions, seed)
    items = [Sample(e.path, label, split)
             for e, label, split in zip(entries, labels, assignment, strict=True)]
    splits = Splits(task="keypoints", root=str(root.resolve()), classes=used, items=items,
                    seed=seed, fractions=tuple(fractions),
                    extra={"layout": layout_obj.name,
                           "category": category if category is not None else
                           (next(iter(categories)) if len(categories) == 1 else None)})
    return KeypointDatasetReport(splits, problems, skipped)
