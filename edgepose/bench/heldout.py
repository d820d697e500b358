"""Keep a run's own training images out of the accuracy ``edgepose bench --data`` reports.

A model converted in a run directory sits next to ``splits.json``, which lists the
samples it was trained on (``train``; int8 calibration samples are drawn from it
too) and selected on (``val``: early stopping and the best epoch). Scoring those
as if held out flatters the accuracy, with exit 0: a confident wrong answer.
So every ``--data`` file is matched against them by path and by content (sha256
of the file's bytes: a copy under another name or folder is the same image), and
the matches are left out with a warning that counts them; when nothing is left,
the bench refuses in one line. ``--split test`` is the run's own held-out data.

Not detected: near-duplicates (re-encoded or resized copies; ``edgepose data
dedupe`` finds those) and a calibration folder given to ``convert --calib-data``
(the manifest does not list its files). Device side: no TensorFlow.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from edgepose.data.splits import Splits
from edgepose.errors import DataError
from edgepose.rundir import RunDir

# Splits whose samples shaped the model: trained on (and calibrated on), or selected on.
SEEN_SPLITS = ("train", "val")


@dataclass(frozen=True)
class SeenSamples:
    """The samples of a run that the model has seen: resolved path / sha256 -> split."""

    splits_path: Path
    by_path: dict[Path, str]
    by_hash: dict[str, str]


@dataclass(frozen=True)
class HeldOut:
    """Which ``--data`` files are held out for one model.

    ``keep`` indexes the data's files; ``seen`` counts the left-out ones per split;
    ``by_content`` is how many of those matched by bytes only (another path).
    """

    keep: list[int]
    seen: dict[str, int]
    by_content: int
    total: int
    splits_path: Path | None

    @property
    def left_out(self) -> int:
        return sum(self.seen.values())

    def note(self, model: Path, data: str) -> str | None:
        """The warning line, or None when nothing was left out."""
        if not self.left_out:
            return None
        splits = ", ".join(f"{n} {split}" for split, n in self.seen.items())
        content = (f", {self.by_content} of them copies under another name"
                   if self.by_content else "")
        return (f"{model.name}: {self.left_out} of {self.total} samples in {data} are images "
                f"it was trained or selected on ({splits} in {self.splits_path}{content}); "
                f"left out: its accuracy is on the {len(self.keep)} held-out ones")


@lru_cache(maxsize=4096)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    """sha256 of a file's bytes (cached per path, modification time and size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str | None:
    """sha256 of ``path``'s bytes, or None when it cannot be read (the bench lists it)."""
    try:
        stat = path.stat()
        return _file_sha256(str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return None


def seen_samples(model_path: str | Path) -> SeenSamples | None:
    """The train and val samples of the run ``model_path`` sits in; None without splits.json.

    A malformed splits.json raises :class:`DataError` naming it.
    """
    splits_path = RunDir(Path(model_path).parent).splits_path
    if not splits_path.is_file():
        return None
    splits = Splits.load(splits_path)
    by_path: dict[Path, str] = {}
    by_hash: dict[str, str] = {}
    for sample in splits.items:
        if sample.split not in SEEN_SPLITS:
            continue
        path = splits.absolute(sample)
        by_path[path.resolve()] = sample.split
        digest = file_sha256(path)
        if digest is not None:
            by_hash.setdefault(digest, sample.split)
    return SeenSamples(splits_path, by_path, by_hash)


def held_out(files: list[Path], model_path: str | Path, source: str) -> HeldOut:
    """Split ``files`` (a ``--data`` folder's) into held-out ones and ones the model has seen.

    Raises :class:`DataError` naming ``source`` when every file was seen.
    """
    seen = seen_samples(model_path)
    if seen is None:
        return HeldOut(list(range(len(files))), {}, 0, len(files), None)
    keep: list[int] = []
    splits: Counter[str] = Counter()
    by_content = 0
    for i, path in enumerate(files):
        split = seen.by_path.get(path.resolve())
        if split is None:
            digest = file_sha256(path)
            split = seen.by_hash.get(digest) if digest is not None else None
            by_content += split is not None
        if split is None:
            keep.append(i)
        else:
            splits[split] += 1
    counts = {name: splits[name] for name in SEEN_SPLITS if splits[name]}
    result = HeldOut(keep, counts, by_content, len(files), seen.splits_path)
    if not keep:
        splits_text = ", ".join(f"{n} {name}" for name, n in counts.items())
        raise DataError(f"all {len(files)} samples are images {Path(model_path).name} was "
                        f"trained or selected on ({splits_text} in {seen.splits_path}): no "
                        "held-out accuracy; use --split test or other data", source)
    return result
