"""How far a converted model's outputs are from its reference (device-safe, numpy only).

Used by the converter's drift report (reference = the Keras model) and by
``edgepose bench`` (reference = the float32 TFLite model or the reference
outputs saved at conversion), so both report the same numbers the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EPS = 1e-7


@dataclass
class DriftStats:
    """Accuracy of a candidate and its agreement with a reference, on the same samples."""

    samples: int
    accuracy: float | None  # None when no labels were given
    reference_accuracy: float | None
    accuracy_delta: float | None  # candidate - reference, in accuracy points (0..1 scale)
    top1_agreement: float
    mean_abs_diff: float  # mean over samples and classes of |p - p_ref|
    max_abs_diff: float
    mean_kl: float  # mean KL(p_ref || p), natural log, both rows normalised to sum 1
    per_class_accuracy_delta: dict[str, float] | None = None


def compare_outputs(reference: np.ndarray, candidate: np.ndarray,
                    labels: np.ndarray | None = None,
                    class_names: list[str] | None = None) -> DriftStats:
    """Compare two ``N x C`` probability arrays (and accuracy when ``labels`` is given).

    Raises:
        ValueError: ``reference`` and ``candidate`` differ in shape.
    """
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape or reference.ndim != 2:
        raise ValueError(f"output shapes differ: {reference.shape} vs {candidate.shape}")
    ref_top, cand_top = reference.argmax(1), candidate.argmax(1)
    diff = np.abs(candidate - reference)
    # Dequantized int8/uint8 softmax outputs do not sum to 1 exactly (steps of 1/256), and
    # KL of an unnormalised q can go negative: normalise both after clipping (Gibbs' inequality
    # then keeps KL >= 0, 0 only for equal distributions).
    p = np.clip(reference, _EPS, 1.0)
    q = np.clip(candidate, _EPS, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    q = q / q.sum(axis=1, keepdims=True)
    kl = np.sum(p * (np.log(p) - np.log(q)), axis=1)
    accuracy = reference_accuracy = delta = None
    per_class = None
    if labels is not None:
        labels = np.asarray(labels)
        accuracy = float(np.mean(cand_top == labels))
        reference_accuracy = float(np.mean(ref_top == labels))
        delta = accuracy - reference_accuracy
        names = class_names or [str(i) for i in range(reference.shape[1])]
        per_class = {}
        for index, name in enumerate(names):
            mask = labels == index
            if mask.any():
                per_class[name] = float(np.mean(cand_top[mask] == index)
                                        - np.mean(ref_top[mask] == index))
    return DriftStats(
        samples=int(reference.shape[0]),
        accuracy=accuracy,
        reference_accuracy=reference_accuracy,
        accuracy_delta=delta,
        top1_agreement=float(np.mean(ref_top == cand_top)),
        mean_abs_diff=float(diff.mean()),
        max_abs_diff=float(diff.max()),
        mean_kl=float(np.mean(kl)),
        per_class_accuracy_delta=per_class,
    )
