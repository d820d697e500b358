"""The pipeline under faults: a watchdog that stops when capture hangs, every frame accounted for.

Real parts throughout: named pipes that block a real open(), a real unix
datagram socket for ``$NOTIFY_SOCKET``, real video files and image folders.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edgepose.runtime.classifier import Classifier
from edgepose.service.engine import Engine
from edgepose.service.pipeline import Pipeline
from edgepose.service.results import ResultPolicy
from edgepose.service.sdnotify import SdNotifier, watchdog_interval
from edgepose.service.sinks import JsonlSink, SinkSet
from edgepose.service.sources import (
    DirectorySource,
    SourceFailed,
    TestPatternSource,
    VideoFileSource,
)
from tests import service_fixtures as fx


@pytest.fixture(scope="module")
def engine(tiny_run) -> Engine:  # noqa: F811
    return Engine(Classifier.from_file(tiny_run.fp32))


class SlowEngine:
    """A real engine that takes at least ``delay`` seconds per frame."""

    def __init__(self, engine: Engine, delay: float):
        self.engine, self.delay = engine, delay
        self.labels, self.task = engine.labels, engine.task

    def infer(self, rgb):
        time.sleep(self.delay)
        return self.engine.infer(rgb)


def make_pipeline(open_source, engine, sinks=None, **kwargs) -> Pipeline:
    return Pipeline(open_source, engine, ResultPolicy(engine.labels), sinks or SinkSet([]),
                    backoff=(0.02, 0.1), **kwargs)


def unblock(fifo: Path) -> None:
    """Let a reader blocked in open() of ``fifo`` go on (it then reads end of file)."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # nobody is blocked on it


def run_in_thread(pipeline: Pipeline) -> tuple[threading.Thread, list]:
    errors: list = []

    def target():
        try:
            pipeline.run()
        except Exception as exc:  # the FIFO's end of file may end the run with a DataError
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, errors


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


# -- the watchdog ----------------------------------------------------------------------------


def test_watchdog_stops_when_a_looping_video_becomes_a_pipe_that_blocks(
        engine, service_video, notify_socket, tmp_path):  # noqa: F811
    """WATCHDOG_USEC=2000000 as systemd sets it; the looping file is replaced by a FIFO."""
    video = tmp_path / "loop.avi"
    shutil.copy(service_video, video)
    pipeline = make_pipeline(lambda: VideoFileSource(video, loop=True, fps=0), engine,
                             notifier=SdNotifier(notify_socket.address),
                             watchdog_s=watchdog_interval({"WATCHDOG_USEC": "2000000"}),
                             stale_after_s=0.5)
    thread, _ = run_in_thread(pipeline)
    try:
        assert wait_until(lambda: pipeline.metrics.snapshot().frames_classified >= 5)
        assert "WATCHDOG=1" in notify_socket.receive(timeout=3.0, until="WATCHDOG=1")
        video.unlink()
        os.mkfifo(video)  # the reopen at the end of the pass blocks in open()
        assert wait_until(lambda: not pipeline.health.status()[0])
        assert pipeline.health.status()[1].startswith("no frame for")
        notify_socket.messages.clear()
        # Within one WATCHDOG_USEC after the hang at most one last ping may leave; after that none.
        notify_socket.receive(timeout=2.0)
        notify_socket.messages.clear()
        assert "WATCHDOG=1" not in notify_socket.receive(timeout=3.0)
        assert pipeline.watchdog_stalls == 1
    finally:
        pipeline.stop()
        unblock(video)
        thread.join(10)
    assert not thread.is_alive()


def test_watchdog_is_fed_while_a_missing_camera_is_retried_with_backoff(
        engine, notify_socket):  # noqa: F811
    """Retrying is progress (the capture thread is alive); /healthz says why it is unhealthy."""
    def open_camera():
        raise SourceFailed("cannot open camera 0")

    pipeline = Pipeline(open_camera, engine, ResultPolicy(engine.labels), SinkSet([]),
                        backoff=(0.3, 0.3), notifier=SdNotifier(notify_socket.address),
                        watchdog_s=0.1)
    thread, _ = run_in_thread(pipeline)
    try:
        messages = notify_socket.receive(timeout=1.5)
        assert messages.count("WATCHDOG=1") >= 8
        ok, reason = pipeline.health.status()
        assert not ok and reason.startswith("source failed to open: cannot open camera 0")
        assert pipeline.watchdog_stalls == 0
    finally:
        pipeline.stop()
        thread.join(10)


def test_watchdog_is_fed_between_frames_of_a_slowly_paced_source(engine, notify_socket):  # noqa: F811
    """One frame every 0.5 s is a wait by design, longer than the 0.2 s ping window."""
    pipeline = make_pipeline(lambda: TestPatternSource(32, 32, fps=2), engine,
                             notifier=SdNotifier(notify_socket.address), watchdog_s=0.1)
    thread, _ = run_in_thread(pipeline)
    try:
        notify_socket.receive(timeout=0.6)
        notify_socket.messages.clear()
        assert notify_socket.receive(timeout=1.5).count("WATCHDOG=1") >= 10
        assert pipeline.watchdog_stalls == 0
    finally:
        pipeline.stop()
        thread.join(10)


# -- a folder: every file accounted for ------------------------------------------------------


@pytest.fixture
def hostile_folder(tmp_path) -> tuple[Path, list[str]]:
    """Class subfolders of real photos, with a bomb, a corrupt file, an empty file and a FIFO.

    Returns the folder and the items (relative paths) that must be classified, in order.
    """
    from PIL import Image

    folder = tmp_path / "frames"
    good = []
    for i, rgb in enumerate(fx.photos((64, 48)) * 3):
        rel = f"{'cats' if i % 2 else 'dogs'}/{i:02d}.jpg"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(folder / rel)
        good.append(rel)
    fx.write_huge_png(folder / "cats" / "03_bomb.png", 20000, 20000)
    (folder / "dogs" / "04_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "dogs" / "06_empty.jpg").write_bytes(b"")
    (folder / "dogs" / ".hidden.jpg").write_bytes(b"skipped: hidden")
    return folder, sorted(good)


def test_a_folder_with_a_bomb_is_classified_to_the_end_in_order(
        engine, hostile_folder, tmp_path, caplog):
    folder, expected = hostile_folder
    out = tmp_path / "out.jsonl"
    # Slower than decoding: a live source would drop frames here.
    pipeline = make_pipeline(lambda: DirectorySource(folder), SlowEngine(engine, 0.02),
                             SinkSet([JsonlSink(out)]))
    with caplog.at_level("WARNING"):
        summary = pipeline.run()
    items = [json.loads(line)["item"] for line in out.read_text().splitlines()]
    assert items == expected
    assert (summary.frames_classified, summary.frames_dropped, summary.bad_frames,
            summary.source_failures) == (12, 0, 3, 0)
    assert summary.stopped_by == "end of source"
    warnings = [r.getMessage() for r in caplog.records if "bad frame" in r.getMessage()]
    assert warnings == [
        f"skipping a bad frame: {folder}/cats/03_bomb.png: image is 400.0 megapixels, over "
        "edgepose's decode limit of 40 megapixels",
        f"skipping a bad frame: {folder}/dogs/04_corrupt.jpg: not a readable image "
        "(OSError: Truncated File Read)",
        f"skipping a bad frame: {folder}/dogs/06_empty.jpg: empty file"]


def test_a_pipe_put_where_the_next_file_was_is_skipped_not_waited_for(engine, hostile_folder):
    folder, expected = hostile_folder
    source = DirectorySource(folder)
    victim = folder / expected[1]
    victim.unlink()
    os.mkfifo(victim)  # after the folder was listed, as a misbehaving writer might
    pipeline = make_pipeline(lambda: source, engine)
    try:
        summary = pipeline.run()
    finally:
        unblock(victim)
    assert summary.bad_frames == 4
    assert summary.frames_classified == len(expected) - 1


def test_a_video_without_loop_is_classified_frame_by_frame(engine, service_video, tmp_path):  # noqa: F811
    out = tmp_path / "out.jsonl"
    pipeline = make_pipeline(lambda: VideoFileSource(service_video, fps=0),
                             SlowEngine(engine, 0.01), SinkSet([JsonlSink(out)]))
    summary = pipeline.run()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["item"] for line in lines] == list(range(40))
    assert [line["frame"] for line in lines] == list(range(1, 41))
    assert summary.frames_dropped == 0


def test_dropping_frames_of_a_folder_only_when_asked(engine, hostile_folder):
    folder, expected = hostile_folder
    pipeline = make_pipeline(lambda: DirectorySource(folder), SlowEngine(engine, 0.05),
                             drop_frames=True)
    summary = pipeline.run()
    assert summary.frames_dropped > 0
    assert summary.frames_classified + summary.frames_dropped == len(expected)


def test_edgepose_serve_stops_feeding_systemd_when_its_looping_video_hangs(
        tiny_run, service_video, notify_socket, tmp_path):  # noqa: F811
    """The issue's reproduction, end to end: the real CLI, WATCHDOG_USEC=2000000, a FIFO."""
    from tests.test_service_cli import Serve

    video = tmp_path / "loop.avi"
    shutil.copy(service_video, video)
    serve = Serve(["--model", str(tiny_run.fp32), "--source", f"video:{video}", "--loop",
                   "--http", "127.0.0.1:0", "--no-stdout"],
                  NOTIFY_SOCKET=notify_socket.address, WATCHDOG_USEC="2000000")
    try:
        url = serve.url()
        assert "READY=1" in "".join(notify_socket.receive(timeout=30, until="READY=1"))
        assert "WATCHDOG=1" in notify_socket.receive(timeout=3, until="WATCHDOG=1")
        video.unlink()
        os.mkfifo(video)

        def unhealthy() -> bool:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2).read()
                return False
            except urllib.error.HTTPError as exc:
                return exc.code == 503

        assert wait_until(unhealthy, timeout=20)
        notify_socket.receive(timeout=2.0)  # at most one last ping within WATCHDOG_USEC
        notify_socket.messages.clear()
        assert "WATCHDOG=1" not in notify_socket.receive(timeout=3.0)
    finally:
        code = serve.stop()
        unblock(video)
    assert code == 0, "".join(serve.stderr)
    assert "Traceback" not in "".join(serve.stderr)
    assert any("not pinging the watchdog" in line for line in serve.stderr)


def test_serve_with_a_missing_token_file_stops_in_one_line(tiny_run, tmp_path):  # noqa: F811
    import subprocess

    missing = tmp_path / "token"
    done = subprocess.run([fx.PYTHON, "-m", "edgepose", "serve", "--model", str(tiny_run.fp32),
                           "--source", "test", "--http-token-file", str(missing)],
                          capture_output=True, text=True, env=fx.python_env(), timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {missing}: cannot read the token file (No such file or directory)")
