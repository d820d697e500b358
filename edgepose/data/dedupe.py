"""Near-duplicate leak check across train/val/test.

A test image that is a re-encoded, resized or slightly brightened copy of a
training image makes held-out accuracy look better than it is. Each image gets
two 64-bit perceptual hashes (``imagehash`` pHash and dHash); two images are
*near-twins* when both hashes are within ``threshold`` bits of each other.
Requiring both keeps genuinely different but similar-looking images (e.g. two
people's handwritten "1") from being flagged, while copies still match on both.

``imagehash`` is a host-side extra (``edgepose[train]``): imported only when a
hash is computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from edgepose.data.splits import SPLIT_NAMES, Splits
from edgepose.errors import ConfigError
from edgepose.runtime.preprocess import load_rgb

# Split order used to settle a near-twin group: the whole group joins the
# earliest split any member is in, so held-out data only ever moves to train.
_RANK = {name: rank for rank, name in enumerate(SPLIT_NAMES)}

# One hashed image: (pHash, dHash) as unsigned 64-bit integers.
HashPair = tuple[int, int]


@dataclass
class LeakReport:
    """Near-twins that cross splits (paths relative to the dataset root)."""

    test_with_train_twin: int
    val_with_train_twin: int
    pairs: list[tuple[str, str]]  # (val/test path, its twin in an earlier split)
    threshold: int
    removed: list[str]  # val/test images moved into their twin's split by dedupe
    test_with_val_twin: int = 0

    @property
    def leaking(self) -> int:
        """How many val/test images had a near-twin in an earlier split."""
        return len({held_out for held_out, _ in self.pairs})

    def summary(self) -> str:
        """One line for reports."""
        line = (f"leak check (perceptual hash, threshold {self.threshold}): "
                f"{self.test_with_train_twin} test and {self.val_with_train_twin} val image(s) "
                f"have a near-twin in train; {self.test_with_val_twin} test image(s) in val")
        if self.removed:
            line += f"; dedupe moved {len(self.removed)} image(s) to their twin's split"
        return line


def _imagehash():
    try:
        import imagehash
    except ImportError:
        raise ConfigError("the near-duplicate check needs the imagehash package: "
                          "pip install 'edgepose[train]'") from None
    return imagehash


def hashes_available() -> bool:
    """True when ``imagehash`` is installed (the leak check can run)."""
    try:
        import imagehash  # noqa: F401
    except ImportError:
        return False
    return True


def _to_int(image_hash) -> int:
    return int.from_bytes(np.packbits(image_hash.hash.reshape(-1)).tobytes(), "big")


# Both hashes look at <= 32x32 pixels; a picture is shrunk to this once first (and a JPEG
# decoded reduced to about it), much cheaper than letting each hash resample a full photo.
HASH_INPUT_SIDE = 256


def image_hash(image) -> HashPair:
    """Perceptual (pHash, dHash) of a PIL image, as two 64-bit integers."""
    imagehash = _imagehash()
    if image.mode != "L":
        image = image.convert("L")
    if max(image.size) > HASH_INPUT_SIDE:
        image = image.copy()
        image.thumbnail((HASH_INPUT_SIDE, HASH_INPUT_SIDE))
    return _to_int(imagehash.phash(image)), _to_int(imagehash.dhash(image))


def _popcount(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(values)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    return table[values[..., None].view(np.uint8)].sum(axis=-1, dtype=np.uint8)


def near_pairs(codes: np.ndarray, threshold: int) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, whose hashes are both within ``threshold`` bits.

    ``codes`` is an ``N x 2`` uint64 array. Brute force in row blocks sized to
    keep temporaries near 32 MB; a few thousand images take milliseconds.
    """
    n = len(codes)
    pairs: list[tuple[int, int]] = []
    if n < 2:
        return pairs
    rows = max(1, (1 << 22) // n)
    for start in range(0, n - 1, rows):
        block = codes[start:start + rows]
        rest = codes[start:]
        near = _popcount(block[:, None, 0] ^ rest[None, :, 0]) <= threshold
        near &= _popcount(block[:, None, 1] ^ rest[None, :, 1]) <= threshold
        i, j = np.nonzero(near)
        j = j + start
        i = i + start
        keep = j > i
        pairs.extend(zip(i[keep].tolist(), j[keep].tolist(), strict=True))
    return pairs


def _codes(splits: Splits, hashes: Mapping[str, HashPair] | None) -> np.ndarray:
    codes = np.zeros((len(splits.items), 2), dtype=np.uint64)
    for index, sample in enumerate(splits.items):
        pair = hashes.get(sample.path) if hashes is not None else None
        if pair is None:
            path = splits.absolute(sample)
            pair = image_hash(load_rgb(path, reduce_to=(HASH_INPUT_SIDE, HASH_INPUT_SIDE)))
        codes[index] = pair
    return codes


def _report(splits: Splits, pairs: list[tuple[int, int]], threshold: int) -> LeakReport:
    items = splits.items
    crossing: set[tuple[str, str]] = set()
    twins: dict[str, set[str]] = {"test": set(), "val": set(), "test_val": set()}
    for i, j in pairs:
        a, b = items[i], items[j]
        if a.split == b.split:
            continue
        held_out, earlier = (a, b) if _RANK[a.split] > _RANK[b.split] else (b, a)
        crossing.add((held_out.path, earlier.path))
        if earlier.split == "train":
            twins[held_out.split].add(held_out.path)
        else:
            twins["test_val"].add(held_out.path)
    return LeakReport(test_with_train_twin=len(twins["test"]),
                      val_with_train_twin=len(twins["val"]),
                      pairs=sorted(crossing), threshold=threshold, removed=[],
                      test_with_val_twin=len(twins["test_val"]))


def find_leaks(splits: Splits, threshold: int = 4,
               hashes: Mapping[str, HashPair] | None = None) -> LeakReport:
    """Count val/test images that have a near-twin in an earlier split.

    ``hashes`` (relative path -> :func:`image_hash`) skips re-decoding images
    that were already hashed while scanning.
    """
    _check_threshold(threshold)
    codes = _codes(splits, hashes)
    return _report(splits, near_pairs(codes, threshold), threshold)


def remove_leaks(splits: Splits, threshold: int = 4,
                 hashes: Mapping[str, HashPair] | None = None) -> tuple[Splits, LeakReport]:
    """Move leaking val/test images so no near-twin pair crosses splits.

    Near-twins are grouped transitively (a chain of near-identical video frames
    is one group); each group joins the earliest split any member is in
    (train before val before test). Deterministic: depends only on the hashes
    and the current split. Returns the new splits and the report of what was
    found, with ``removed`` listing the moved images.
    """
    _check_threshold(threshold)
    codes = _codes(splits, hashes)
    pairs = near_pairs(codes, threshold)
    report = _report(splits, pairs, threshold)

    parent = list(range(len(splits.items)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for i, j in pairs:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    target: dict[int, int] = {}
    for index, sample in enumerate(splits.items):
        r = root(index)
        target[r] = min(target.get(r, _RANK[sample.split]), _RANK[sample.split])

    items = []
    moved = []
    for index, sample in enumerate(splits.items):
        split = SPLIT_NAMES[target[root(index)]]
        if split != sample.split:
            moved.append(sample.path)
            sample = replace(sample, split=split)
        items.append(sample)
    extra = dict(splits.extra)
    extra["dedupe"] = {"threshold": threshold, "moved": sorted(moved)}
    report.removed = sorted(moved)
    return replace(splits, items=items, extra=extra), report


def _check_threshold(threshold: int) -> None:
    if not 0 <= int(threshold) <= 32:
        raise ConfigError(f"leak threshold must be 0..32 bits of 64, got {threshold}")
