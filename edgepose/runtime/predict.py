"""``edgepose predict``: top-k labels for image or keypoint files, as a result object."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgepose.errors import DataError
from edgepose.runtime.classifier import Classification, Classifier
from edgepose.runtime.input_contract import StatedContract
from edgepose.runtime.threads import resolve_threads


@dataclass
class Prediction:
    """The top-k answers for one input file."""

    input: str
    top: list[Classification]  # best first; JSON: {"index", "label", "score"} each
    latency_ms: float  # prepare + invoke + postprocess, decode included
    no_person: str | None = None  # keypoint models: why there is no person (then no top-k)


@dataclass
class FailedInput:
    """An input that could not be processed, and why (one line, without the file name)."""

    input: str
    reason: str


@dataclass
class PredictResult:
    """Predictions of one model on a list of inputs, with how it was run."""

    model: str
    task: str
    runtime: str  # e.g. "ai_edge_litert 2.3.0"
    threads: int | None  # None: the runtime's default (one XNNPACK thread)
    xnnpack: bool
    delegation: str  # DelegationReport.summary()
    labels_source: str
    predictions: list[Prediction] = field(default_factory=list)
    input_contract: str = ""  # InputContract.describe(): how pixels became model input
    failed: list[FailedInput] = field(default_factory=list)  # unreadable inputs, in order
    threads_auto: str | None = None  # ThreadChoice.describe() when --threads auto chose

    def check(self, strict: bool = False) -> None:
        """Raise :class:`DataError` when nothing was processed, or (``strict``) anything failed.

        Raises:
            DataError: nothing could be processed, or (``strict``) anything failed.
        """
        total = len(self.predictions) + len(self.failed)
        if self.failed and not self.predictions:
            first = self.failed[0]
            raise DataError(f"none of the {total} input(s) could be processed "
                            f"(first: {first.input}: {first.reason})")
        if strict and self.failed:
            raise DataError(f"{len(self.failed)} of {total} input(s) could not be processed "
                            f"(--strict): {', '.join(f.input for f in self.failed)}")


def predict_files(model: str | Path, inputs: Sequence[str | Path], k: int = 3,
                  manifest: str | Path | None = None, labels: str | Path | None = None,
                  num_threads: int | str | None = None, use_xnnpack: bool = True,
                  prefer: str | None = None, stated: StatedContract | None = None
                  ) -> PredictResult:
    """Classify each input file (images, or keypoint JSON files for keypoint models).

    ``stated`` is the user's input contract (``--input-range`` ...), needed for a float
    image model without manifest or metadata. An input that cannot be read (missing,
    not an image, a broken file, a bad keypoint file: a :class:`DataError`) is listed
    in ``failed`` and the others are still classified; call :meth:`PredictResult.check`
    to turn failures into an error. A model that cannot run raises at once (it would
    fail every input). ``num_threads="auto"`` times the model at 1, 2, ... threads
    first (:func:`edgepose.runtime.threads.choose_threads`, about a second).
    """
    threads, choice = resolve_threads(num_threads, model, use_xnnpack, prefer)
    classifier = Classifier.from_file(model, manifest, labels, threads, use_xnnpack, prefer,
                                      stated=stated)
    result = PredictResult(model=str(model), task=classifier.task,
                           runtime=str(classifier.backend), threads=threads,
                           threads_auto=choice.describe() if choice else None,
                           xnnpack=use_xnnpack, delegation=classifier.delegation.summary(),
                           labels_source=classifier.labels_source,
                           input_contract=classifier.contract.describe())
    k = max(1, min(k, classifier.num_classes))
    for item in inputs:
        start = time.perf_counter_ns()
        try:
            sample = classifier.prepare(Path(item))
            nobody = classifier.no_person(sample)
            top = [] if nobody else classifier.top_k(classifier.predict(sample), k)
        except DataError as exc:
            result.failed.append(FailedInput(str(item), exc.message))
            continue
        elapsed_ms = (time.perf_counter_ns() - start) / 1e6
        result.predictions.append(Prediction(
            input=str(item), top=top,
            latency_ms=elapsed_ms, no_person=nobody))
    return result
