"""Class weights for imbalanced datasets.

``auto`` gives the usual balanced weights ``n_samples / (n_classes * n_c)``
counted on the train split (what scikit-learn calls ``"balanced"``), so a rare
class contributes as much total loss as a common one. Pass the result to
Keras ``fit(class_weight=...)``.
"""

from __future__ import annotations

from collections import Counter

from edgepose.data.splits import Splits
from edgepose.errors import ConfigError, DataError

CLASS_WEIGHT_MODES = ("auto", "none")


def class_weights(splits: Splits, mode: str = "auto") -> dict[int, float] | None:
    """Balanced per-class weights from the train split, or None for ``mode="none"``.

    Raises :class:`DataError` if a class has no training samples (its weight
    would be infinite) and :class:`ConfigError` for an unknown mode.
    """
    if mode == "none":
        return None
    if mode != "auto":
        raise ConfigError(f"class weights must be one of {', '.join(CLASS_WEIGHT_MODES)}, "
                          f"not {mode!r}")
    counts = Counter(sample.label for sample in splits.samples("train"))
    missing = [name for label, name in enumerate(splits.classes) if counts[label] == 0]
    if missing:
        raise DataError(f"no training samples for class(es) {', '.join(missing)}; "
                        "cannot weight them", splits.root)
    total = sum(counts.values())
    n_classes = len(splits.classes)
    return {label: total / (n_classes * counts[label]) for label in range(n_classes)}
