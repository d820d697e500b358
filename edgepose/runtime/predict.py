"""``edgepose predict``: top-k labels for image or keypoint files, as a result object."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgepose.runtime.classifier import Classifier
from edgepose.runtime.input_contract import StatedContract


@dataclass
class RankedLabel:
    """One of the top-k answers for an input."""

    index: int
    label: str
    score: float


@dataclass
class Prediction:
    """The top-k answers for one input file."""

    input: str
    top: list[RankedLabel]
    latency_ms: float  # prepare + invoke + postprocess, decode included


@dataclass
class PredictResult:
    """Predictions of one model on a list of inputs, with how it was run."""

    model: str
    task: str
    runtime: str  # e.g. "ai_edge_litert 2.3.0"
    threads: int | None
    xnnpack: bool
    delegation: str  # DelegationReport.summary()
    labels_source: str
    predictions: list[Prediction] = field(default_factory=list)
    input_contract: str = ""  # InputContract.describe(): how pixels became model input


def predict_files(model: str | Path, inputs: Sequence[str | Path], k: int = 3,
                  manifest: str | Path | None = None, labels: str | Path | None = None,
                  num_threads: int | None = None, use_xnnpack: bool = True,
                  prefer: str | None = None, stated: StatedContract | None = None
                  ) -> PredictResult:
    """Classify each input file (images, or keypoint JSON files for keypoint models).

    ``stated`` is the user's input contract (``--input-range`` ...), needed for a float
    image model without manifest or metadata.
    """
    classifier = Classifier.from_file(model, manifest, labels, num_threads, use_xnnpack, prefer,
                                      stated=stated)
    result = PredictResult(model=str(model), task=classifier.task,
                           runtime=str(classifier.backend), threads=num_threads,
                           xnnpack=use_xnnpack, delegation=classifier.delegation.summary(),
                           labels_source=classifier.labels_source,
                           input_contract=classifier.contract.describe())
    k = max(1, min(k, classifier.num_classes))
    for item in inputs:
        start = time.perf_counter_ns()
        top = classifier.classify(Path(item), k)
        elapsed_ms = (time.perf_counter_ns() - start) / 1e6
        result.predictions.append(Prediction(
            input=str(item), top=[RankedLabel(c.index, c.label, c.score) for c in top],
            latency_ms=elapsed_ms))
    return result
