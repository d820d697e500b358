"""Soak test of the camera-classifier service: thousands of frames, memory must stay flat.

Runs the real service pipeline in-process (capture thread, newest-frame
hand-off, classifier, JSONL sink with rotation, HTTP server polled like a
dashboard would) on a looping video file or folder and reports:

- classified frames per second,
- p50 / p99 end-to-end latency (frame captured -> result ready) and inference latency,
- frames dropped by the newest-frame hand-off, bad frames, errors,
- resident memory after warm-up and at the end (sampled along the way): it must stay flat.

Without ``--model`` a tiny real classifier is built with TensorFlow (host only);
without ``--source`` a video is written from scikit-image photos (MJPG, OpenCV).
Writes ``benchmarks/results/<machine>/service_soak.json`` and ``.md``.

    .venv/bin/python benchmarks/service_soak.py --frames 10000
    .venv/bin/python benchmarks/service_soak.py --model model_int8.tflite --source dir:photos/
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np  # noqa: E402
from benchmark_utils import (  # noqa: E402  (the one path set-up)
    ROOT,
    results_dir,
    sample_rss,
    write_results,
)

from edgepose.bench.device import machine_slug  # noqa: E402
from edgepose.runtime.classifier import Classifier  # noqa: E402
from edgepose.service.engine import Engine  # noqa: E402
from edgepose.service.http_server import HttpService  # noqa: E402
from edgepose.service.pipeline import Pipeline  # noqa: E402
from edgepose.service.results import FrameResult, ResultPolicy  # noqa: E402
from edgepose.service.sinks import JsonlSink, Sink, SinkSet  # noqa: E402
from edgepose.service.sources import source_factory  # noqa: E402

# Memory may grow by this much after warm-up before the run counts as leaking.
RSS_TOLERANCE_MB = 8.0


@dataclass
class SoakResult:
    machine: str
    model: str
    source: str
    source_fps: float  # pacing of the source, 0 = as fast as it decodes
    frames_classified: int
    seconds: float
    fps: float
    end_to_end_ms_p50: float
    end_to_end_ms_p99: float
    inference_ms_p50: float
    inference_ms_p99: float
    frames_captured: int
    frames_dropped: int
    bad_frames: int
    errors: int
    http_requests: int
    rss_mb_after_warmup: float | None
    rss_mb_end: float | None
    rss_growth_mb: float | None
    rss_flat: bool
    rss_samples_mb: list[float] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


class LatencyRecorder(Sink):
    """Keeps the latencies of every result in preallocated arrays (no growth)."""

    name = "recorder"

    def __init__(self, capacity: int, warmup: int, sample_every: int):
        self.age = np.zeros(capacity, dtype=np.float32)
        self.latency = np.zeros(capacity, dtype=np.float32)
        self.n = 0
        self.warmup, self.sample_every = warmup, sample_every
        self.rss: list[float] = []

    def emit(self, result: FrameResult) -> None:
        if self.n < len(self.age):
            self.age[self.n] = result.age_ms
            self.latency[self.n] = result.latency_ms
        self.n += 1
        if self.n >= self.warmup and (self.n - self.warmup) % self.sample_every == 0:
            sample_rss(self.rss)


def tiny_model(work: Path) -> Path:
    """Build the tests' tiny int8 classifier in a child process, so that TensorFlow
    never enters this one and the memory figures are the service's alone."""
    code = ("import sys; from pathlib import Path; from tests.tflite_models import build_tiny_run; "
            "print(build_tiny_run(Path(sys.argv[1])).int8)")
    done = subprocess.run([sys.executable, "-c", code, str(work / "tiny")], check=True,
                          capture_output=True, text=True, cwd=ROOT)
    return Path(done.stdout.strip().splitlines()[-1])


def video_source(work: Path) -> str:
    from tests.service_fixtures import write_video

    return "video:" + str(write_video(work / "photos.avi", frames_per_photo=25,
                                      size=(320, 240)))


def poll_http(url: str, stop: threading.Event, counter: list[int]) -> None:
    """A dashboard polling /latest and /metrics twice a second."""
    while not stop.wait(0.5):
        for path in ("/latest", "/metrics", "/healthz"):
            try:
                with urllib.request.urlopen(url + path, timeout=2) as response:
                    response.read()
                counter[0] += 1
            except OSError:
                pass


def soak(model: Path, source: str, frames: int, fps: float, work: Path,
         warmup: int = 200) -> SoakResult:
    engine = Engine(Classifier.from_file(model))
    recorder = LatencyRecorder(frames, warmup=warmup, sample_every=max(frames // 20, 50))
    jsonl = JsonlSink(work / "out" / "results.jsonl", max_bytes=1_000_000, backups=2)
    open_source = source_factory(source, size=engine.input_size, loop=True, fps=fps)
    pipeline = Pipeline(open_source, engine, ResultPolicy(engine.labels, "majority", 5),
                        SinkSet([recorder, jsonl]))
    http = HttpService(pipeline.state, "127.0.0.1", 0).start()
    stop, requests = threading.Event(), [0]
    poller = threading.Thread(target=poll_http, args=(http.url, stop, requests), daemon=True)
    poller.start()
    try:
        summary = pipeline.run(max_frames=frames)
    finally:
        stop.set()
        poller.join(5)
        http.stop()
    n = min(recorder.n, frames)
    age, latency = recorder.age[warmup:n], recorder.latency[warmup:n]
    rss = recorder.rss
    growth = round(rss[-1] - rss[0], 2) if len(rss) >= 2 else None
    return SoakResult(
        machine=machine_slug(), model=model.name, source=source.split(":", 1)[0], source_fps=fps,
        frames_classified=summary.frames_classified, seconds=round(summary.seconds, 3),
        fps=round(summary.frames_classified / summary.seconds, 2),
        end_to_end_ms_p50=round(float(np.percentile(age, 50)), 3),
        end_to_end_ms_p99=round(float(np.percentile(age, 99)), 3),
        inference_ms_p50=round(float(np.percentile(latency, 50)), 3),
        inference_ms_p99=round(float(np.percentile(latency, 99)), 3),
        frames_captured=summary.frames_captured, frames_dropped=summary.frames_dropped,
        bad_frames=summary.bad_frames,
        errors=summary.source_failures + summary.inference_errors + summary.sink_errors,
        http_requests=requests[0],
        rss_mb_after_warmup=rss[0] if rss else None, rss_mb_end=rss[-1] if rss else None,
        rss_growth_mb=growth, rss_flat=growth is not None and growth <= RSS_TOLERANCE_MB,
        rss_samples_mb=rss,
        settings={"warmup_frames": warmup, "smoothing": "majority/5", "jsonl_rotation": "1 MB x 2",
                  "http_poll": "/latest, /metrics, /healthz every 0.5 s",
                  "rss_tolerance_mb": RSS_TOLERANCE_MB, "python": sys.version.split()[0]})


def markdown(r: SoakResult) -> str:
    rows = [("frames classified", r.frames_classified), ("seconds", r.seconds), ("fps", r.fps),
            ("end-to-end p50 / p99 (ms)", f"{r.end_to_end_ms_p50} / {r.end_to_end_ms_p99}"),
            ("inference p50 / p99 (ms)", f"{r.inference_ms_p50} / {r.inference_ms_p99}"),
            ("frames captured / dropped", f"{r.frames_captured} / {r.frames_dropped}"),
            ("bad frames / errors", f"{r.bad_frames} / {r.errors}"),
            ("HTTP requests served", r.http_requests),
            ("RSS after warm-up / end (MiB)", f"{r.rss_mb_after_warmup} / {r.rss_mb_end}"),
            ("RSS growth (MiB)", f"{r.rss_growth_mb} ({'flat' if r.rss_flat else 'GROWING'})")]
    lines = [f"# Service soak on {r.machine}", "",
             f"Model `{Path(r.model).name}`, source `{r.source}` "
             f"(paced at {r.source_fps or 'no limit'} fps), results after "
             f"{r.settings['warmup_frames']} warm-up frames.", "",
             "| measure | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", f"RSS samples (MiB): {', '.join(str(v) for v in r.rss_samples_mb)}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a .tflite image classifier (default: tiny)")
    parser.add_argument("--source", help="video:FILE or dir:FOLDER (looped)")
    parser.add_argument("--frames", type=int, default=10000)
    parser.add_argument("--fps", type=float, default=0.0,
                        help="pace the source (0: as fast as it decodes)")
    parser.add_argument("--out", type=Path, help="results folder (default: per machine)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        model = args.model or tiny_model(work)
        source = args.source or video_source(work)
        result = soak(model, source, args.frames, args.fps, work)
    out = results_dir(args.out, result.machine)
    write_results(out, "service_soak", asdict(result), markdown(result))
    print(markdown(result))
    return 0 if result.rss_flat else 1


if __name__ == "__main__":
    sys.exit(main())
