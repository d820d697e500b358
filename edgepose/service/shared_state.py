"""What the capture thread, the inference loop and the HTTP server share, and how safely.

:class:`LatestFrame` is the one-slot mailbox between capture and inference
(a newer frame replaces one not yet taken); :class:`Progress` is what the
watchdog is fed from; :class:`Health` is what ``/healthz`` answers;
:class:`ServiceState` holds the newest result for ``/latest`` and classifies
uploads for ``/classify``. Each guards its fields with its own lock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from edgepose.service.engine import Engine
from edgepose.service.frame_source import BadFrame
from edgepose.service.metrics import Metrics
from edgepose.service.results import FrameResult, ResultPolicy


def check_frame(frame: object) -> np.ndarray:
    """Return ``frame`` as an ``H x W x 3`` uint8 array, or raise BadFrame.

    Raises:
        BadFrame: not a numpy array, not ``H x W x 3``, or not uint8.
    """
    if not isinstance(frame, np.ndarray):
        raise BadFrame(f"frame is {type(frame).__name__}, not a numpy array")
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.shape[0] < 2 or frame.shape[1] < 2:
        raise BadFrame(f"frame has shape {frame.shape}, expected HxWx3")
    if frame.dtype != np.uint8:
        raise BadFrame(f"frame has dtype {frame.dtype}, expected uint8")
    return frame[..., :3] if frame.shape[2] == 4 else frame


@dataclass
class CapturedFrame:
    image: np.ndarray
    number: int
    captured_at: float  # time.monotonic()
    wall_time: float  # time.time()
    item: str | int | None = None  # the source's name for it: file name or frame index


class Progress:
    """When the pipeline last moved, for the watchdog.

    :meth:`beat` records progress; :meth:`idle_until` declares a wait the
    pipeline chose itself (a backoff, the pause of a paced source), which
    counts as progress until it ends. :meth:`alive` says whether there was
    progress within the last ``window`` seconds. Thread-safe enough: each
    field is one float written atomically by CPython.
    """

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.until = 0.0

    def beat(self) -> None:
        self.last = time.monotonic()

    def idle_until(self, deadline: float) -> None:
        self.until = max(self.until, deadline)

    def alive(self, window: float, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return now - self.last <= window or now <= self.until


class LatestFrame:
    """A one-slot mailbox between capture and inference.

    :meth:`put` replaces a frame nobody took (returns True: one frame dropped);
    :meth:`take` waits for a frame. :meth:`finish` marks the end of the source.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: CapturedFrame | None = None
        self.finished = False

    def put(self, frame: CapturedFrame, wait: bool = False) -> bool:
        """Hand over ``frame``; True if an untaken one was replaced (dropped).

        With ``wait`` it first waits until the previous frame was taken (or the
        mailbox is finished, then ``frame`` is discarded): nothing is dropped.
        """
        with self._cond:
            while wait and self._frame is not None and not self.finished:
                self._cond.wait(0.5)
            if wait and self.finished:
                return False
            dropped = self._frame is not None
            self._frame = frame
            self._cond.notify_all()
            return dropped

    def take(self, timeout: float) -> CapturedFrame | None:
        with self._cond:
            if self._frame is None and not self.finished:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            if frame is not None:
                self._cond.notify_all()  # a waiting put() may go on
            return frame

    def finish(self) -> None:
        with self._cond:
            self.finished = True
            self._cond.notify_all()


class Health:
    """Whether the source delivers frames; the reason when it does not."""

    def __init__(self, stale_after_s: float = 10.0):
        self._lock = threading.Lock()
        self.ok = False
        self.reason = "starting: waiting for the first frame"
        self.last_frame_at: float | None = None
        self.stale_after_s = stale_after_s

    def set(self, ok: bool, reason: str = "") -> None:
        with self._lock:
            self.ok, self.reason = ok, reason

    def frame_arrived(self) -> None:
        with self._lock:
            self.last_frame_at = time.monotonic()
            if not self.ok:
                self.ok, self.reason = True, ""

    def status(self) -> tuple[bool, str]:
        """``(healthy, reason)``; a source silent for ``stale_after_s`` is unhealthy."""
        with self._lock:
            ok, reason, last = self.ok, self.reason, self.last_frame_at
        if ok and last is not None and time.monotonic() - last > self.stale_after_s:
            return False, f"no frame for {time.monotonic() - last:.0f} s"
        return ok, reason


class ServiceState:
    """What the HTTP server shows: the newest result and frame, health and metrics."""

    def __init__(self, engine: Engine, policy: ResultPolicy, metrics: Metrics, health: Health,
                 info: dict | None = None):
        self.engine, self.policy, self.metrics, self.health = engine, policy, metrics, health
        self.info = info or {}
        self._lock = threading.Lock()
        self.latest: FrameResult | None = None
        self.latest_frame: np.ndarray | None = None

    def publish(self, result: FrameResult, frame: np.ndarray) -> None:
        with self._lock:
            self.latest, self.latest_frame = result, frame

    def snapshot(self) -> tuple[FrameResult | None, np.ndarray | None]:
        with self._lock:
            return self.latest, self.latest_frame

    def classify(self, rgb: np.ndarray) -> FrameResult:
        """Classify one uploaded image with the service's model (no smoothing)."""
        start = time.perf_counter()
        out = self.engine.infer(check_frame(rgb))
        latency = (time.perf_counter() - start) * 1e3
        result = self.policy.single(out.probabilities, latency_ms=latency, person=out.person)
        result.extra = out.extra
        return result


# Errors that no retry can fix: a missing file, a missing package, a bad option.
