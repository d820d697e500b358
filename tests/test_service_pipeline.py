"""The capture thread, newest-frame hand-off, fault handling and the watchdog."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgepose.runtime.classifier import Classifier
from edgepose.service.engine import Engine
from edgepose.service.pipeline import Pipeline
from edgepose.service.results import ResultPolicy
from edgepose.service.sdnotify import SdNotifier
from edgepose.service.sinks import JsonlSink, SinkSet
from edgepose.service.sources import (
    DirectorySource,
    FrameSource,
    SourceFailed,
    TestPatternSource,
    VideoFileSource,
)


@pytest.fixture(scope="module")
def engine(tiny_run) -> Engine:
    return Engine(Classifier.from_file(tiny_run.fp32))


def make_pipeline(open_source, engine, sinks=None, **kwargs) -> Pipeline:
    policy = ResultPolicy(engine.labels)
    return Pipeline(open_source, engine, policy, sinks or SinkSet([]),
                    backoff=(0.02, 0.1), **kwargs)


class SlowEngine:
    """A real engine that takes at least ``delay`` seconds per frame."""

    def __init__(self, engine: Engine, delay: float):
        self.engine, self.delay = engine, delay
        self.labels, self.task = engine.labels, engine.task
        self.seen: list[int] = []

    def infer(self, rgb):
        time.sleep(self.delay)
        return self.engine.infer(rgb)


def test_a_slow_model_gets_the_newest_frame_and_older_ones_are_dropped(engine):
    slow = SlowEngine(engine, 0.05)
    pipeline = make_pipeline(lambda: TestPatternSource(64, 48, fps=200), slow)
    numbers = []
    original = pipeline.process

    def record(frame):
        numbers.append(frame.number)
        return original(frame)

    pipeline.process = record
    summary = pipeline.run(max_frames=6)
    assert summary.frames_classified == 6
    assert summary.frames_dropped > 6
    assert all(b - a > 1 for a, b in zip(numbers[1:], numbers[2:], strict=False))
    # Each result was at most about one inference old when it was taken.
    latest, _ = pipeline.state.snapshot()
    assert latest.age_ms < 5 * 50


def test_results_are_written_and_the_run_ends_with_the_file(engine, service_video, tmp_path):
    sinks = SinkSet([JsonlSink(tmp_path / "out.jsonl")])
    pipeline = make_pipeline(lambda: VideoFileSource(service_video, fps=200), engine, sinks)
    summary = pipeline.run()
    assert summary.stopped_by == "end of source"
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == summary.frames_classified > 0


class FailingSource(FrameSource):
    """Real frames from a video file; the first one opened dies after ``fail_after`` frames."""

    def __init__(self, path, opened: list, fail_after: int = 3):
        self.inner = VideoFileSource(path, loop=True, fps=200)
        self.fail_after = fail_after if not opened else None
        self.n = 0
        opened.append(self)

    def read(self):
        self.n += 1
        if self.fail_after is not None and self.n > self.fail_after:
            raise OSError("VIDIOC_DQBUF: No such device")
        return self.inner.read()

    def close(self):
        self.inner.close()


def test_a_source_that_raises_mid_stream_is_reopened(engine, service_video):
    opened: list = []
    pipeline = make_pipeline(lambda: FailingSource(service_video, opened), engine)
    summary = pipeline.run(max_frames=10)
    assert len(opened) == 2
    assert summary.source_failures == 1
    assert summary.frames_classified == 10


def test_health_says_why_while_the_camera_cannot_be_opened(engine):
    attempts = []

    def open_camera():
        attempts.append(time.monotonic())
        if len(attempts) < 4:
            raise SourceFailed("cannot open camera 0")
        return TestPatternSource(32, 32, fps=100)

    pipeline = make_pipeline(open_camera, engine)
    pipeline.start()
    deadline = time.monotonic() + 2
    while len(attempts) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    ok, reason = pipeline.health.status()
    assert not ok and "cannot open camera 0" in reason
    summary = pipeline.run(max_frames=3)
    assert pipeline.health.status()[0]
    assert summary.source_failures == 3
    gaps = np.diff(attempts)
    assert gaps[1] > gaps[0]  # exponential backoff


def test_a_corrupt_image_is_skipped_and_counted(engine, photo_dir):
    pipeline = make_pipeline(lambda: DirectorySource(photo_dir, fps=100), engine)
    summary = pipeline.run()
    assert summary.bad_frames == 1
    assert summary.frames_captured == 4


class OddFrames(FrameSource):
    """Real frames with a malformed array (wrong shape, wrong dtype) in between."""

    def __init__(self):
        self.inner = TestPatternSource(32, 32, fps=100, frames=6)
        self.n = 0

    def read(self):
        self.n += 1
        frame = self.inner.read()
        if self.n == 2:
            return frame[..., 0]
        if self.n == 4:
            return frame.astype(np.float64)
        return frame


def test_a_malformed_frame_array_is_skipped(engine):
    summary = make_pipeline(OddFrames, engine).run()
    assert summary.bad_frames == 2
    assert summary.frames_captured == 4


class HangingEngine:
    """A real engine that blocks forever (until released) after ``after`` frames."""

    def __init__(self, engine: Engine, after: int):
        self.engine, self.after = engine, after
        self.labels, self.task = engine.labels, engine.task
        self.release = threading.Event()
        self.hung = threading.Event()
        self.n = 0

    def infer(self, rgb):
        self.n += 1
        if self.n > self.after:
            self.hung.set()
            self.release.wait(10)
        return self.engine.infer(rgb)


def test_watchdog_pings_stop_when_the_loop_hangs(engine, notify_socket):
    hanging = HangingEngine(engine, after=5)
    pipeline = make_pipeline(lambda: TestPatternSource(32, 32, fps=50), hanging,
                             notifier=SdNotifier(notify_socket.address), watchdog_s=0.05)
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        assert hanging.hung.wait(5)
        before = notify_socket.receive(timeout=0.3).count("WATCHDOG=1")
        assert before >= 1
        notify_socket.messages.clear()
        during = notify_socket.receive(timeout=0.5)
        assert "WATCHDOG=1" not in during
    finally:
        hanging.release.set()
        pipeline.stop()
        runner.join(5)
    assert not runner.is_alive()
