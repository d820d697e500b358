"""One way to take a subset of labelled samples: stratified by class and seeded.

Every place that measures on fewer samples than it has (``bench --max-samples``,
calibration, the emulated-Pi bench, ``benchmarks/``) draws its subset here, so
a measurement never depends on the order files happen to be listed in (class
folders sorted by name put every sample of the first classes first: the first
90 files of a 3-class set can be one class, on which a model that always
answers that class scores 100%).

Device side: numpy only (no TensorFlow), so ``edgepose bench`` can use it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class SampleChoice:
    """Which samples of a population were taken, and how to say so in a report.

    ``indices`` are positions into the population, ascending. ``per_class``
    maps each class to ``[chosen, available]``.
    """

    indices: list[int]
    population: int
    seed: int
    source: str = ""  # e.g. "test split of runs/x" or a folder
    per_class: dict[str, list[int]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.indices)

    @property
    def complete(self) -> bool:
        return self.count == self.population

    def describe(self) -> str:
        """``"90 of 539 samples (stratified by class, seed 0) from <source>"``."""
        how = ("all" if self.complete else
               f"stratified by class, seed {self.seed}" if len(self.per_class) > 1 else
               f"seeded random, seed {self.seed}")
        text = (f"all {self.population} samples" if self.complete else
                f"{self.count} of {self.population} samples ({how})")
        return f"{text} from {self.source}" if self.source else text


def _quotas(sizes: list[int], n: int) -> list[int]:
    """Split ``n`` over classes in proportion to ``sizes`` (largest remainder, Hamilton).

    Every class gets at least one sample (the caller ensures ``n >= len(sizes)``)
    and the quotas sum to exactly ``n``: rounding each class on its own can
    overshoot, and cutting the overshoot from the end of the list drops the last
    classes, which is the bias this module exists to avoid.
    """
    total = sum(sizes)
    ideal = [n * size / total for size in sizes]
    quotas = [min(size, max(1, int(share))) for size, share in zip(sizes, ideal, strict=True)]
    while sum(quotas) > n:  # the minimum of one pushed us over: take from the most over
        i = max((i for i, q in enumerate(quotas) if q > 1), key=lambda i: quotas[i] - ideal[i])
        quotas[i] -= 1
    while sum(quotas) < n:  # hand out the rest by largest remainder, within each class
        i = max((i for i, q in enumerate(quotas) if q < sizes[i]),
                key=lambda i: ideal[i] - quotas[i])
        quotas[i] += 1
    return quotas


def stratified_indices(labels: Sequence[Hashable], n: int | None, seed: int = 0,
                       source: str = "") -> SampleChoice:
    """Choose ``n`` of ``len(labels)`` samples, each class in proportion to its size.

    ``labels`` holds one class per sample (any hashable: index or name; all
    equal for unlabelled data, which makes this a plain seeded random sample).
    ``n=None`` or ``n >= len(labels)`` takes everything. With fewer samples than
    classes, ``n`` classes drawn with the seed get one sample each. The same
    labels, ``n`` and ``seed`` give the same choice on every machine (numpy's
    PCG64 ``default_rng``). Raises ValueError for ``n < 1``.
    """
    labels = list(labels)
    if n is not None and n < 1:
        raise ValueError(f"a sample needs at least 1 item, not {n}")
    by_class: dict[Hashable, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    classes = list(by_class)  # first-seen order: stable for a stable file listing
    size = len(labels)
    if n is None or n >= size:
        return SampleChoice(list(range(size)), size, seed, source,
                            {str(c): [len(by_class[c])] * 2 for c in classes})
    rng = np.random.default_rng(seed)
    sizes = [len(by_class[c]) for c in classes]
    if n < len(classes):
        picked = set(int(i) for i in rng.choice(len(classes), size=n, replace=False))
        quotas = [1 if i in picked else 0 for i in range(len(classes))]
    else:
        quotas = _quotas(sizes, n)
    chosen: list[int] = []
    per_class: dict[str, list[int]] = {}
    for cls, quota in zip(classes, quotas, strict=True):
        members = by_class[cls]
        order = rng.permutation(len(members))[:quota]
        chosen.extend(members[i] for i in order)
        per_class[str(cls)] = [quota, len(members)]
    return SampleChoice(sorted(chosen), size, seed, source, per_class)


def take(items: Sequence, choice: SampleChoice) -> list:
    """``items`` at the chosen positions (same order as ``choice.indices``)."""
    return [items[i] for i in choice.indices]
