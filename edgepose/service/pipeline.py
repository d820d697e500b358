"""The capture thread, the newest-frame hand-off, and the inference loop.

Capture runs in its own thread and puts each frame into a one-slot mailbox;
a frame that inference has not taken yet is replaced by the newer one (and
counted as dropped), so latency never builds up behind a slow model and
nothing queues without bound. A finite source (a folder, a video file
without ``--loop``) is different: nobody is waiting for a fresher picture, so
capture waits for inference and every frame is classified in order (unless
``drop_frames`` asks otherwise). The inference loop takes the frame,
classifies it, applies the result policy, and hands the result to the sinks
and to the HTTP state.

The systemd watchdog is fed only while the pipeline makes progress
(:class:`~edgepose.service.shared_state.Progress`): a frame classified, a bad
frame skipped, a failed source attempt returned, or a wait the pipeline chose (a
reopen backoff, the pause between paced frames). A capture stuck in a read or an
open (a camera that never answers, a named pipe with no writer) and an inference
that never returns both stop ``WATCHDOG=1``, so ``WatchdogSec=`` restarts the
service.

Faults: a frame that cannot be decoded is logged and skipped; a source that
fails is closed and reopened with exponential backoff while ``/healthz``
reports it; a sink that fails is counted and otherwise ignored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edgepose.errors import ConfigError, DataError, EdgeposeError, RuntimeNotAvailable
from edgepose.service.engine import Engine
from edgepose.service.frame_source import BadFrame, FrameSource
from edgepose.service.metrics import Metrics
from edgepose.service.rate_limited_log import RateLimitedLog
from edgepose.service.results import FrameResult, ResultPolicy
from edgepose.service.sdnotify import SdNotifier
from edgepose.service.shared_state import (
    CapturedFrame,
    Health,
    LatestFrame,
    Progress,
    ServiceState,
    check_frame,
)
from edgepose.service.sinks import SinkSet

log = logging.getLogger(__name__)


_FATAL = (DataError, RuntimeNotAvailable, ConfigError)


@dataclass
class PipelineSummary:
    """How a run ended."""

    frames_captured: int
    frames_classified: int
    frames_dropped: int
    bad_frames: int
    source_failures: int
    inference_errors: int
    sink_errors: int
    seconds: float
    stopped_by: str  # "signal", "end of source", "max frames", "duration"
    watchdog_stalls: int = 0  # times the watchdog pings stopped (a restart under systemd)


class Pipeline:
    """Capture thread + inference loop around one engine, policy and set of sinks.

    ``drop_frames``: None (default) drops stale frames of live sources only and
    classifies every frame of a finite one; True or False forces either.
    ``watchdog_s`` is the ping interval (half of ``$WATCHDOG_USEC``); pings are
    sent only while :attr:`progress` shows progress within ``2 * watchdog_s``.
    """

    def __init__(self, open_source: Callable[[], FrameSource], engine: Engine,
                 policy: ResultPolicy, sinks: SinkSet, metrics: Metrics | None = None,
                 notifier: SdNotifier | None = None, watchdog_s: float | None = None,
                 backoff: tuple[float, float] = (0.5, 30.0), flush_every_s: float = 1.0,
                 status_every_s: float = 5.0, stale_after_s: float = 10.0,
                 drop_frames: bool | None = None):
        self.open_source, self.engine, self.policy, self.sinks = open_source, engine, policy, sinks
        self.metrics = metrics or Metrics()
        self.notifier = notifier or SdNotifier("")
        self.watchdog_s = watchdog_s
        self.drop_frames = drop_frames
        self.progress = Progress()
        #: How often the pings stopped (each one a restart under systemd's watchdog).
        self.watchdog_stalls = 0
        self.backoff_min, self.backoff_max = backoff
        self.flush_every_s, self.status_every_s = flush_every_s, status_every_s
        self.health = Health(stale_after_s)
        self.state = ServiceState(engine, policy, self.metrics, self.health)
        self.mailbox = LatestFrame()
        self.stop_event = threading.Event()
        self.ready_event = threading.Event()
        self.fatal: BaseException | None = None
        self._source: FrameSource | None = None
        self._source_lock = threading.Lock()
        self._capture_thread: threading.Thread | None = None
        self._log = RateLimitedLog()
        self.stopped_by = "signal"

    # -- capture -----------------------------------------------------------------------------

    def _close_source(self) -> None:
        with self._source_lock:
            source, self._source = self._source, None
        if source is not None:
            try:
                source.close()
            except Exception as exc:  # a dying device may fail to close, too
                log.debug("closing the source failed: %s", exc)

    def _open_with_backoff(self) -> FrameSource | None:
        delay = self.backoff_min
        while not self.stop_event.is_set():
            try:
                source = self.open_source()
            except _FATAL as exc:
                self.fatal = exc
                return None
            except Exception as exc:
                self.metrics.count("source_failures")
                reason = f"source failed to open: {exc}; retrying in {delay:.1f} s"
                self.health.set(False, reason)
                self._log.warning("open", "%s", reason)
                self.progress.idle_until(time.monotonic() + delay + 1.0)
                self.stop_event.wait(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            with self._source_lock:
                self._source = source
            self.progress.beat()
            return source
        return None

    def _capture_loop(self) -> None:
        number = 0
        delay = self.backoff_min
        try:
            while not self.stop_event.is_set():
                source = self._open_with_backoff()
                if source is None:
                    return
                keep_all = (not self.drop_frames if self.drop_frames is not None
                            else source.finite)
                period = float(getattr(source, "frame_period", 0.0) or 0.0)
                while not self.stop_event.is_set():
                    if period:
                        # A paced source sleeps by design before it delivers.
                        self.progress.idle_until(time.monotonic() + period)
                    try:
                        image = check_frame(source.read())
                    except StopIteration:
                        self.stopped_by = "end of source"
                        return
                    except BadFrame as exc:
                        self.progress.beat()
                        self.metrics.count("bad_frames")
                        if source.finite:  # every skipped file is named, once
                            log.warning("skipping a bad frame: %s", exc)
                        else:
                            self._log.warning("bad", "skipping a bad frame: %s", exc)
                        continue
                    except Exception as exc:
                        self.progress.beat()
                        self.metrics.count("source_failures")
                        reason = f"source failed: {exc}; reopening in {delay:.1f} s"
                        self.health.set(False, reason)
                        self._log.warning("failed", "%s", reason)
                        self._close_source()
                        self.progress.idle_until(time.monotonic() + delay + 1.0)
                        self.stop_event.wait(delay)
                        delay = min(delay * 2, self.backoff_max)
                        break
                    delay = self.backoff_min
                    number += 1
                    self.health.frame_arrived()
                    self.metrics.count("frames_captured")
                    frame = CapturedFrame(image, number, time.monotonic(), time.time(),
                                          getattr(source, "item", None))
                    if self.mailbox.put(frame, wait=keep_all):
                        self.metrics.count("frames_dropped")
        except BaseException as exc:  # never let the thread die silently
            self.fatal = exc
        finally:
            self._close_source()
            self.mailbox.finish()

    # -- inference ---------------------------------------------------------------------------

    def process(self, frame: CapturedFrame) -> FrameResult | None:
        """Classify one captured frame, update state and sinks; None if inference failed."""
        start = time.perf_counter()
        try:
            out = self.engine.infer(frame.image)
        except Exception as exc:
            self.progress.beat()  # the engine answered, if with an error
            self.metrics.count("inference_errors")
            self._log.warning("infer", "inference failed on frame %d: %s", frame.number, exc)
            return None
        latency = time.perf_counter() - start
        age = time.monotonic() - frame.captured_at
        if out.probabilities is None:
            self.metrics.count("no_person")
        result = self.policy.apply(out.probabilities, latency_ms=latency * 1e3,
                                   age_ms=age * 1e3, frame=frame.number,
                                   timestamp=frame.wall_time, person=out.person)
        result.extra = out.extra
        result.item = frame.item
        self.metrics.classified(latency, age)
        self.progress.beat()
        self.state.publish(result, frame.image)
        if self.policy.should_emit(result):
            self.sinks.emit(result)
        return result

    def start(self) -> None:
        """Start the capture thread (the loop runs in :meth:`run`)."""
        self._capture_thread = threading.Thread(target=self._capture_loop, name="capture",
                                                daemon=True)
        self._capture_thread.start()

    def stop(self) -> None:
        """Ask the loop and the capture thread to stop (safe from a signal handler)."""
        self.stop_event.set()
        self.mailbox.finish()

    def run(self, max_frames: int | None = None, duration_s: float | None = None,
            on_ready: Callable[[], None] | None = None) -> PipelineSummary:
        """Run the inference loop in this thread until stopped, then clean up.

        ``on_ready`` is called once, after the first frame is classified (the
        model and the camera both work). Raises the source's fatal error, if any.
        """
        if self._capture_thread is None:
            self.start()
        started = time.monotonic()
        last_ping = last_flush = last_status = 0.0
        classified = 0
        stalled = False
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if self.watchdog_s and now - last_ping >= self.watchdog_s:
                    if self.progress.alive(2 * self.watchdog_s, now):
                        self.notifier.watchdog()
                        last_ping, stalled = now, False
                    elif not stalled:
                        stalled = True
                        self.watchdog_stalls += 1
                        log.warning("no progress for %.1f s: not pinging the watchdog (systemd "
                                    "restarts the service)", now - self.progress.last)
                if now - last_flush >= self.flush_every_s:
                    self.sinks.flush()
                    last_flush = now
                if self.notifier.enabled and now - last_status >= self.status_every_s:
                    self.notifier.status(self.status_line())
                    last_status = now
                if duration_s is not None and now - started >= duration_s:
                    self.stopped_by = "duration"
                    break
                wait = 0.2 if not self.watchdog_s else min(0.2, self.watchdog_s / 2)
                frame = self.mailbox.take(timeout=wait)
                if frame is None:
                    if self.mailbox.finished:
                        break
                    continue
                if self.process(frame) is not None:
                    classified += 1
                    if not self.ready_event.is_set():
                        self.ready_event.set()
                        if on_ready is not None:
                            on_ready()
                if max_frames is not None and classified >= max_frames:
                    self.stopped_by = "max frames"
                    break
        finally:
            self.stop_event.set()
            self.mailbox.finish()
            # The capture thread closes its own source: closing a device from another
            # thread in the middle of a read is not safe with every driver.
            if self._capture_thread is not None:
                self._capture_thread.join(timeout=5.0)
            self.sinks.close()
        if self.fatal is not None:
            if isinstance(self.fatal, EdgeposeError):
                raise self.fatal
            raise RuntimeError(f"capture thread failed: {self.fatal}") from self.fatal
        snap = self.metrics.snapshot()
        return PipelineSummary(snap.frames_captured, snap.frames_classified, snap.frames_dropped,
                               snap.bad_frames, snap.source_failures, snap.inference_errors,
                               sum(snap.sink_errors.values()), time.monotonic() - started,
                               self.stopped_by, self.watchdog_stalls)

    def status_line(self) -> str:
        latest, _ = self.state.snapshot()
        ok, reason = self.health.status()
        label = latest.label if latest else "-"
        text = f"{self.metrics.fps():.1f} fps, last label {label}"
        return text if ok else f"{text}; {reason}"
