"""What the service reports per frame, and how noisy per-frame answers are tamed.

A :class:`FrameResult` is one classified frame. A :class:`ResultPolicy`
turns the stream of raw results into the reported one: optional temporal
smoothing over the last N frames (majority vote or an exponential moving
average of the probabilities), a score threshold below which the label is
``unknown``, and an event mode that reports only when the label changes.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field, replace

import numpy as np

from edgepose.errors import ConfigError
from edgepose.runtime.classifier import Classification, rank_labels

UNKNOWN = "unknown"
NO_PERSON = "no_person"


@dataclass
class FrameResult:
    """The answer for one frame.

    ``latency_ms`` is inference alone (pose + classifier); ``age_ms`` is from
    the moment the frame was captured to the moment the result was ready, the
    end-to-end delay a consumer sees. ``item`` names the frame in its source:
    a folder's file (path relative to the folder) or a video's frame index
    (from 0, restarting with each pass of ``--loop``); None for cameras.
    ``person`` is None for image models and says whether the pose model found
    someone for keypoint models.
    """

    label: str
    score: float
    top_k: list[Classification]
    latency_ms: float
    age_ms: float
    frame: int
    timestamp: float
    person: bool | None = None
    raw_label: str | None = None  # the single-frame label before smoothing/threshold
    event: bool = False  # True when the reported label differs from the previous one
    extra: dict = field(default_factory=dict)
    item: str | int | None = None  # which file (relative path) or video frame (index) it was

    def to_dict(self) -> dict:
        return {
            "label": self.label, "score": round(self.score, 6),
            "top_k": [{"label": p.label, "score": round(p.score, 6)} for p in self.top_k],
            "latency_ms": round(self.latency_ms, 3), "age_ms": round(self.age_ms, 3),
            "frame": self.frame, "timestamp": round(self.timestamp, 6),
            "person": self.person, "raw_label": self.raw_label, "event": self.event,
            **({"item": self.item} if self.item is not None else {}),
            **({"extra": self.extra} if self.extra else {}),
        }


SMOOTHING_METHODS = ("none", "majority", "ema")


class Smoother:
    """Average class probabilities over time.

    ``majority``: the most frequent top-1 label over the last ``window`` frames
    (ties go to the most recent), scored by its mean probability over those
    frames. ``ema``: exponential moving average with ``alpha = 2 / (window + 1)``.
    """

    def __init__(self, method: str = "none", window: int = 5):
        if method not in SMOOTHING_METHODS:
            raise ConfigError(f"smoothing must be one of {', '.join(SMOOTHING_METHODS)}, "
                              f"not {method!r}")
        if window < 1:
            raise ConfigError(f"smoothing window must be at least 1, got {window}")
        self.method, self.window = method, window
        self._history: deque[np.ndarray] = deque(maxlen=window)
        self._ema: np.ndarray | None = None

    def reset(self) -> None:
        self._history.clear()
        self._ema = None

    def update(self, probabilities: np.ndarray) -> tuple[np.ndarray, int]:
        """Add one frame's probabilities; return the smoothed ones and the winning index."""
        p = np.asarray(probabilities, dtype=np.float32)
        if self.method == "none":
            return p, int(np.argmax(p))
        if self.method == "ema":
            alpha = 2.0 / (self.window + 1)
            if self._ema is None or self._ema.shape != p.shape:
                self._ema = p.copy()
            else:
                self._ema = (1 - alpha) * self._ema + alpha * p
            return self._ema, int(np.argmax(self._ema))
        self._history.append(p)
        winners = [int(np.argmax(h)) for h in self._history]
        counts = Counter(winners)
        best = max(counts.values())
        winner = next(w for w in reversed(winners) if counts[w] == best)
        return np.mean(np.stack(self._history), axis=0), winner


class ResultPolicy:
    """Smoothing, thresholding and event detection, applied in that order.

    :meth:`apply` returns the result for every frame, with ``event`` set when
    the label changed; :meth:`should_emit` says whether sinks get it (in event
    mode only changes are emitted, while ``/latest`` still shows every frame).
    """

    def __init__(self, labels: list[str], smoothing: str = "none", window: int = 5,
                 threshold: float = 0.0, events_only: bool = False, top_k: int = 3):
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"score threshold must be between 0 and 1, got {threshold}")
        self.labels = labels
        self.smoother = Smoother(smoothing, window)
        self.threshold, self.events_only, self.k = threshold, events_only, max(1, top_k)
        self._last_label: str | None = None

    def rank(self, probabilities: np.ndarray) -> list[Classification]:
        return rank_labels(probabilities, self.labels, self.k)

    def apply(self, probabilities: np.ndarray | None, *, latency_ms: float, age_ms: float,
              frame: int, timestamp: float, person: bool | None = None) -> FrameResult:
        """Build the reported result for one frame (``probabilities`` None: no person)."""
        if probabilities is None:
            # Nobody in view: forget the history so an old pose does not linger.
            self.smoother.reset()
            result = FrameResult(NO_PERSON, 0.0, [], latency_ms, age_ms, frame, timestamp,
                                 person=False, raw_label=NO_PERSON)
        else:
            raw = self.rank(np.asarray(probabilities))
            smoothed, winner = self.smoother.update(probabilities)
            top = self.rank(smoothed)
            label, score = self.labels[winner], float(smoothed[winner])
            if score < self.threshold:
                label = UNKNOWN
            result = FrameResult(label, score, top, latency_ms, age_ms, frame, timestamp,
                                 person=person, raw_label=raw[0].label)
        changed = result.label != self._last_label
        self._last_label = result.label
        return replace(result, event=changed)

    def should_emit(self, result: FrameResult) -> bool:
        return result.event or not self.events_only

    def single(self, probabilities: np.ndarray | None, *, latency_ms: float,
               person: bool | None = None) -> FrameResult:
        """A one-off result (an uploaded image): threshold applied, no smoothing, no events."""
        now = time.time()
        if probabilities is None:
            return FrameResult(NO_PERSON, 0.0, [], latency_ms, latency_ms, 0, now,
                               person=False, raw_label=NO_PERSON)
        top = self.rank(np.asarray(probabilities))
        label = top[0].label if top[0].score >= self.threshold else UNKNOWN
        return FrameResult(label, top[0].score, top, latency_ms, latency_ms, 0, now,
                           person=person, raw_label=top[0].label)
