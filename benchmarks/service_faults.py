"""Fault-injection soak of the camera service: every frame accounted for, a watchdog that means it.

Runs the real service pipeline in-process (capture thread, classifier, JSONL
sink, HTTP server on 127.0.0.1 with an upload token, sd_notify to a real unix
datagram socket that stands in for systemd) for ``--minutes``, while a frame
source cycles through the faults an unattended Pi meets:

- a real MJPG video file played through (paced like a camera, ``--fps``);
- a real folder of photos with corrupt, empty, truncated and oversized files in
  it (a 20000x20000 and a 12000x12000 1-bit PNG, each under 50 KB);
- every ``--hang-every`` cycles, a capture that hangs: ``open()`` of a named pipe
  that blocks for ``--hang-s`` seconds until a writer comes and sends a photo
  (the source recovers by itself, as a USB camera that stalls may);

and, at the same time, clients that misbehave: hostile uploads (decompression
bombs, garbage, wrong token, no token, too large, multipart, wrong method),
slow clients that trickle a body, idle connections, connections reset mid
request. Everything is loopback only and bounded by ``--minutes``.

It reports frames classified against the frames the source delivered (they
must be equal: a frame source that is not live must lose nothing), bad frames
against the bad files delivered, RSS at start, end and peak, the restarts
systemd's watchdog would have triggered (a gap between ``WATCHDOG=1`` pings
longer than ``WATCHDOG_USEC``) against the hangs injected, every HTTP answer
by status against what it should have been, and the tracebacks printed on
stderr (must be 0). TensorFlow never enters this process (the tiny model is
built in a child process).

    .venv/bin/python benchmarks/service_faults.py --minutes 10
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import socket
import struct
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np  # noqa: E402
from benchmark_utils import (  # noqa: E402  (the one path set-up)
    results_dir,
    rss_sampler,
    write_results,
)
from PIL import Image  # noqa: E402

from benchmarks.service_soak import tiny_model  # noqa: E402
from edgepose.bench.device import current_rss_mb, machine_slug, peak_rss_mb  # noqa: E402
from edgepose.runtime.classifier import Classifier  # noqa: E402
from edgepose.runtime.preprocess import load_rgb  # noqa: E402
from edgepose.service.engine import Engine  # noqa: E402
from edgepose.service.http_server import HttpOptions, HttpService  # noqa: E402
from edgepose.service.pipeline import Pipeline  # noqa: E402
from edgepose.service.results import ResultPolicy  # noqa: E402
from edgepose.service.sdnotify import SdNotifier  # noqa: E402
from edgepose.service.sinks import JsonlSink, SinkSet  # noqa: E402
from edgepose.service.sources import (  # noqa: E402
    BadFrame,
    DirectorySource,
    FrameSource,
    VideoFileSource,
)
from tests.service_fixtures import (  # noqa: E402
    multipart_upload,
    photos,
    trickle,
    write_huge_png,
    write_video,
)

WATCHDOG_USEC = 2_000_000
TOKEN = "soak-token"


@dataclass
class FaultsResult:
    machine: str
    model: str
    minutes_requested: float
    seconds: float
    cycles: int
    frames_delivered: int  # good frames the source handed over
    frames_classified: int
    frames_dropped: int
    bad_files_delivered: int
    bad_frames_counted: int
    source_failures: int
    inference_errors: int
    hangs_injected: int
    watchdog_restarts_would_trigger: int
    #: Would-be restarts that no injected hang explains: (seconds into the run, ping gap in s).
    watchdog_unexplained: list[tuple[float, float]]
    watchdog_pings: int
    http_answers: dict[str, int]
    http_unexpected: list[str]
    rss_mb_start: float | None
    rss_mb_end: float | None
    rss_mb_peak: float | None
    rss_samples_mb: list[float]  # every 30 s
    stderr_lines: int
    tracebacks: int
    passed: bool
    settings: dict = field(default_factory=dict)


# -- the faulty source ------------------------------------------------------------------------


def hostile_folder(folder: Path) -> tuple[int, int]:
    """Photos with bad files between them; returns (good, bad) counts."""
    folder.mkdir(parents=True)
    good = 0
    for i, rgb in enumerate(photos((320, 240))):
        Image.fromarray(rgb).save(folder / f"{i:02d}_photo.jpg", quality=90)
        good += 1
    write_huge_png(folder / "01_bomb_20000.png", 20000, 20000)
    write_huge_png(folder / "02_bomb_12000.png", 12000, 12000)
    (folder / "02_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "03_empty.png").write_bytes(b"")
    whole = (folder / "00_photo.jpg").read_bytes()
    (folder / "03_truncated.jpg").write_bytes(whole[: len(whole) // 3])
    return good, 5


class FaultySource(FrameSource):
    """Video pass, hostile folder pass, and now and then a hang that recovers; ends at ``until``.

    Live (``finite = False``) like a camera, but the pipeline is told not to
    drop frames so that every delivered frame can be checked off.
    """

    name = "faulty"
    finite = False

    def __init__(self, video: Path, folder: Path, fifo: Path, until: float, fps: float,
                 hang_s: float, hang_every: int, size: tuple[int, int]):
        self.video, self.folder, self.fifo = video, folder, fifo
        self.until, self.fps, self.hang_s, self.hang_every = until, fps, hang_s, hang_every
        self.size = size
        self.frames = self.bad = self.hangs = self.cycles = 0
        self.hang_windows: list[tuple[float, float]] = []  # monotonic start, end
        self.photo = (folder / "00_photo.jpg").read_bytes()
        self._steps = self._run()

    def _run(self):
        while time.monotonic() < self.until:
            self.cycles += 1
            with VideoFileSource(self.video, fps=self.fps) as video:
                for frame in video:
                    self.item = f"video:{video.item}"
                    yield frame
            folder = DirectorySource(self.folder, reduce_to=self.size)
            while True:
                try:
                    frame = folder.read()
                except StopIteration:
                    break
                except BadFrame as exc:
                    yield exc
                    continue
                self.item = f"dir:{folder.item}"
                yield frame
            if self.cycles % self.hang_every == 0:
                yield self._hang_then_recover()

    def _hang_then_recover(self) -> np.ndarray:
        def writer():
            time.sleep(self.hang_s)
            with open(self.fifo, "wb") as pipe:
                pipe.write(self.photo)

        self.hangs += 1
        started = time.monotonic()
        threading.Thread(target=writer, daemon=True).start()
        with open(self.fifo, "rb") as pipe:  # blocks in open() until the writer comes
            data = pipe.read()
        self.hang_windows.append((started, time.monotonic()))
        self.item = "fifo"
        return np.asarray(load_rgb(io.BytesIO(data), self.size, name=str(self.fifo)))

    def read(self) -> np.ndarray:
        step = next(self._steps)  # StopIteration at the deadline ends the run
        if isinstance(step, BadFrame):
            self.bad += 1
            raise step
        self.frames += 1
        return step


# -- systemd's side ---------------------------------------------------------------------------


class WatchdogMonitor:
    """Reads sd_notify datagrams like systemd and counts the restarts it would have made."""

    def __init__(self, usec: int):
        self.timeout = usec / 1e6
        self._dir = tempfile.mkdtemp(prefix="ep-wd-")
        self.address = os.path.join(self._dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.address)
        self.sock.settimeout(0.05)
        self.pings = self.restarts = 0
        self.triggers: list[float] = []  # monotonic times at which systemd would have acted
        self.gaps: list[float] = []  # the ping gap each trigger ended up being
        self.ready = False
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        last, fired = time.monotonic(), False
        while not self._stop.is_set():
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                message = ""
            now = time.monotonic()
            if "READY=1" in message:
                self.ready, last = True, now
            if "WATCHDOG=1" in message:
                self.pings += 1
                if fired:
                    self.gaps.append(round(now - last, 2))
                last, fired = now, False
            # systemd: no ping within WatchdogSec after the last one -> SIGABRT and restart.
            if self.ready and not fired and now - last > self.timeout:
                self.restarts += 1
                self.triggers.append(now)
                fired = True

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()
        os.unlink(self.address)
        os.rmdir(self._dir)


# -- misbehaving clients ----------------------------------------------------------------------


def _post(url: str, body: bytes, headers: dict | None = None, method: str = "POST") -> int:
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method,
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def hostile_uploads(url: str, folder: Path, stop: threading.Event, answers: Counter,
                    unexpected: list[str]) -> None:
    """Cycle through uploads whose right answer is known; record every answer."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    photo = (folder / "00_photo.jpg").read_bytes()
    multipart, multipart_type = multipart_upload("image", "p.jpg", photo)
    cases = [
        ("bomb 20000^2", (folder / "01_bomb_20000.png").read_bytes(), auth, "POST", 413),
        ("bomb 12000^2", (folder / "02_bomb_12000.png").read_bytes(), auth, "POST", 413),
        ("garbage", b"GIF89a? not really", auth, "POST", 400),
        ("truncated", (folder / "03_truncated.jpg").read_bytes(), auth, "POST", 400),
        ("no token", photo, {}, "POST", 401),
        ("wrong token", photo, {"Authorization": "Bearer nope"}, "POST", 401),
        ("too many bytes", b"x" * (2 * 1024 * 1024 + 1), auth, "POST", 413),
        ("multipart photo", multipart, {**auth, "Content-Type": multipart_type}, "POST", 200),
        ("photo", photo, auth, "POST", 200),
        ("GET /classify", b"", {}, "GET", 405),
    ]
    i = 0
    while not stop.wait(0.3):
        name, body, headers, method, want = cases[i % len(cases)]
        i += 1
        try:
            got = _post(url + "/classify", body, headers, method)
        except OSError as exc:
            got = f"no answer ({exc.__class__.__name__})"
        answers[f"{name}: {got}"] += 1
        if got != want and len(unexpected) < 50:
            unexpected.append(f"{name}: wanted {want}, got {got}")


def slow_clients(port: int, stop: threading.Event, answers: Counter,
                 unexpected: list[str]) -> None:
    """Trickled bodies (must get 408), idle connections, connections reset mid request."""
    i = 0
    while not stop.wait(0.5):
        i += 1
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError as exc:
            answers[f"connect failed ({exc.__class__.__name__})"] += 1
            continue
        try:
            kind = i % 3
            if kind == 0:  # trickle: 10 bytes every 0.5 s of a 1000-byte body
                sock.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                             + TOKEN.encode() + b"\r\nContent-Length: 1000\r\n\r\n")
                answer = trickle(sock, chunks=12, pause_s=0.5)
                status = answer.split(b" ")[1].decode() if answer.count(b" ") else "none"
                answers[f"trickled body: {status}"] += 1
                if status != "408" and len(unexpected) < 50:
                    unexpected.append(f"trickled body: wanted 408, got {status}")
            elif kind == 1:  # idle: the server must close it
                started = time.monotonic()
                closed = sock.recv(10) == b""
                answers["idle connection closed by the server" if closed
                        else "idle connection answered"] += 1
                if not closed or time.monotonic() - started > 8:
                    unexpected.append("idle connection not closed within 8 s")
            else:  # reset mid request
                sock.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Length: 9999\r\n\r\n"
                             b"partial")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                answers["reset mid request"] += 1
        except OSError as exc:
            answers[f"client error ({exc.__class__.__name__})"] += 1
        finally:
            sock.close()


# -- the run ----------------------------------------------------------------------------------


def run(model: Path, minutes: float, work: Path, fps: float, hang_s: float,
        hang_every: int) -> FaultsResult:
    video = write_video(work / "loop.avi", frames_per_photo=10, size=(320, 240))
    folder = work / "frames"
    hostile_folder(folder)
    fifo = work / "camera.fifo"
    os.mkfifo(fifo)

    # stderr goes to a file so that any traceback, from any thread or C library, is counted.
    stderr_path = work / "stderr.txt"
    saved_fd = os.dup(2)
    stderr_file = open(stderr_path, "w")  # noqa: SIM115 (closed below, after dup2 back)
    os.dup2(stderr_file.fileno(), 2)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s", force=True)
    rss_start = current_rss_mb()
    started = time.monotonic()
    monitor = WatchdogMonitor(WATCHDOG_USEC)
    engine = Engine(Classifier.from_file(model))
    source = FaultySource(video, folder, fifo, started + minutes * 60, fps, hang_s, hang_every,
                          engine.input_size)
    jsonl = JsonlSink(work / "out" / "results.jsonl", max_bytes=1_000_000, backups=2)
    notifier = SdNotifier(monitor.address)
    pipeline = Pipeline(lambda: source, engine, ResultPolicy(engine.labels), SinkSet([jsonl]),
                        notifier=notifier, watchdog_s=WATCHDOG_USEC / 2e6, drop_frames=False)
    http = HttpService(pipeline.state, "127.0.0.1", 0,
                       HttpOptions(token=TOKEN, max_upload_bytes=2 * 1024 * 1024,
                                   request_timeout_s=3.0, idle_timeout_s=3.0)).start()
    stop = threading.Event()
    answers: Counter = Counter()
    unexpected: list[str] = []
    samples: list[float] = []
    threads = [threading.Thread(target=hostile_uploads,
                                args=(http.url, folder, stop, answers, unexpected), daemon=True),
               threading.Thread(target=slow_clients, args=(http.port, stop, answers, unexpected),
                                daemon=True),
               threading.Thread(target=rss_sampler, args=(stop, samples), daemon=True)]
    for thread in threads:
        thread.start()
    try:
        summary = pipeline.run(on_ready=lambda: notifier.ready("soak"))
    finally:
        # systemd stops watching once the service stops: so does the monitor, first.
        monitor.close()
        stop.set()
        for thread in threads:
            thread.join(20)
        http.stop()
        notifier.close()
        sys.stderr.flush()
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        stderr_file.close()
    text = stderr_path.read_text(errors="replace")
    tracebacks = text.count("Traceback")
    result = FaultsResult(
        machine=machine_slug(), model=model.name, minutes_requested=minutes,
        seconds=round(time.monotonic() - started, 1), cycles=source.cycles,
        frames_delivered=source.frames, frames_classified=summary.frames_classified,
        frames_dropped=summary.frames_dropped, bad_files_delivered=source.bad,
        bad_frames_counted=summary.bad_frames, source_failures=summary.source_failures,
        inference_errors=summary.inference_errors, hangs_injected=source.hangs,
        watchdog_restarts_would_trigger=monitor.restarts,
        watchdog_unexplained=unexplained(monitor, source.hang_windows, started),
        watchdog_pings=monitor.pings,
        http_answers=dict(sorted(answers.items())), http_unexpected=unexpected,
        rss_mb_start=round(rss_start, 2) if rss_start else None,
        rss_mb_end=samples[-1] if samples else None,
        rss_mb_peak=max([round(peak_rss_mb(), 2), *samples]) or None,
        rss_samples_mb=samples[::30],
        stderr_lines=len(text.splitlines()), tracebacks=tracebacks, passed=False,
        settings={"watchdog_usec": WATCHDOG_USEC, "video_fps": fps, "hang_s": hang_s,
                  "hang_every_cycles": hang_every, "upload_every_s": 0.3,
                  "slow_client_every_s": 0.5, "http_request_timeout_s": 3.0,
                  "http_idle_timeout_s": 3.0, "python": sys.version.split()[0]})
    result.passed = (result.frames_classified == result.frames_delivered
                     and result.bad_frames_counted == result.bad_files_delivered
                     and result.watchdog_restarts_would_trigger == result.hangs_injected
                     and not result.watchdog_unexplained
                     and not result.http_unexpected and result.tracebacks == 0)
    (work / "stderr_tail.txt").write_text("\n".join(text.splitlines()[-40:]))
    return result


def unexplained(monitor: WatchdogMonitor, hangs: list[tuple[float, float]],
                started: float) -> list[tuple[float, float]]:
    """Triggers that fall in no injected hang (a trigger comes ``WATCHDOG_USEC`` after the
    last ping, so within a hang's window or up to one timeout after it)."""
    out = []
    for i, when in enumerate(monitor.triggers):
        if not any(start <= when <= end + monitor.timeout for start, end in hangs):
            gap = monitor.gaps[i] if i < len(monitor.gaps) else None
            out.append((round(when - started, 1), gap))
    return out


def markdown(r: FaultsResult, stderr_tail: str) -> str:
    rows = [
        ("duration", f"{r.seconds} s ({r.minutes_requested:g} min requested), {r.cycles} cycles"),
        ("frames classified / delivered by the source",
         f"{r.frames_classified} / {r.frames_delivered}"),
        ("frames dropped", r.frames_dropped),
        ("bad frames counted / bad files delivered",
         f"{r.bad_frames_counted} / {r.bad_files_delivered}"),
        ("source failures / inference errors", f"{r.source_failures} / {r.inference_errors}"),
        ("watchdog restarts that would have triggered / hangs injected",
         f"{r.watchdog_restarts_would_trigger} / {r.hangs_injected}"),
        ("would-be restarts no injected hang explains (s into the run, ping gap s)",
         ", ".join(f"{t} s ({g} s)" for t, g in r.watchdog_unexplained) or "none"),
        ("WATCHDOG=1 pings received", r.watchdog_pings),
        ("HTTP answers not as expected", len(r.http_unexpected)),
        ("RSS start / end / peak (MiB)", f"{r.rss_mb_start} / {r.rss_mb_end} / {r.rss_mb_peak}"),
        ("RSS every 30 s (MiB)", ", ".join(str(v) for v in r.rss_samples_mb)),
        ("tracebacks on stderr (lines on stderr)", f"{r.tracebacks} ({r.stderr_lines})"),
        ("verdict", "PASS" if r.passed else "FAIL"),
    ]
    lines = [f"# Service fault-injection soak on {r.machine}", "",
             f"`benchmarks/service_faults.py --minutes {r.minutes_requested:g}`: model "
             f"`{r.model}`, in-process pipeline, HTTP on 127.0.0.1 with an upload token, "
             f"WATCHDOG_USEC={r.settings['watchdog_usec']}. Each cycle: a 40-frame MJPG video "
             f"at {r.settings['video_fps']:g} fps, a folder of 4 photos + 5 bad files (two "
             "1-bit PNG bombs, corrupt, empty, truncated); every "
             f"{r.settings['hang_every_cycles']} cycles a capture that blocks "
             f"{r.settings['hang_s']:g} s in open() of a named pipe, then recovers.", "",
             "| measure | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "HTTP answers (case: status, count):", ""]
    lines += [f"- {k}: {v}" for k, v in r.http_answers.items()]
    if r.http_unexpected:
        lines += ["", "Unexpected answers:", ""] + [f"- {u}" for u in r.http_unexpected]
    lines += ["", "Last lines on stderr (one line per kind of problem, rate-limited):", "",
              "```", stderr_tail, "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a .tflite image classifier (default: tiny)")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run")
    parser.add_argument("--fps", type=float, default=30.0, help="video pacing, like a camera")
    parser.add_argument("--hang-s", type=float, default=5.0,
                        help="how long an injected capture hang lasts (> WATCHDOG_USEC)")
    parser.add_argument("--hang-every", type=int, default=4, help="inject a hang every N cycles")
    parser.add_argument("--out", type=Path, help="results folder (default: per machine)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        work = Path(tmp)
        model = args.model or tiny_model(work)
        result = run(model, args.minutes, work, args.fps, args.hang_s, args.hang_every)
        tail = (work / "stderr_tail.txt").read_text()
    out = results_dir(args.out, result.machine)
    write_results(out, "service_faults", asdict(result), markdown(result, tail))
    print(markdown(result, tail))
    print(json.dumps({"passed": result.passed}))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
