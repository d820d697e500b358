"""``edgepose serve``: wire model, source, pipeline, sinks, HTTP and systemd together.

:func:`run_service` is the whole service as one call: it returns when the
source ends, the frame or time limit is reached, or SIGTERM/SIGINT arrives,
after flushing every sink. Under systemd it reports ``READY=1`` once the
model is loaded and the first frame is classified, pings the watchdog only
while the pipeline makes progress (see :mod:`edgepose.service.pipeline`),
reports fps in ``STATUS=`` and sends ``STOPPING=1`` on SIGTERM.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepose.runtime.classifier import Classifier
from edgepose.runtime.threads import resolve_threads
from edgepose.service.engine import Engine, load_pose
from edgepose.service.http_server import HttpOptions, HttpService, parse_bind, read_token
from edgepose.service.metrics import Metrics
from edgepose.service.pipeline import Pipeline, PipelineSummary
from edgepose.service.results import ResultPolicy
from edgepose.service.sdnotify import SdNotifier, watchdog_interval
from edgepose.service.sinks import JsonlSink, MqttSink, Sink, SinkSet, StdoutSink, parse_mqtt
from edgepose.service.sources import parse_source, source_factory

log = logging.getLogger("edgepose.service")


@dataclass
class ServeConfig:
    """Every ``edgepose serve`` option."""

    model: Path
    source: str
    pose_model: Path | None = None
    pose_detector: Path | None = None
    labels: Path | None = None
    num_threads: int | str | None = None  # "auto": timed at start-up (runtime.threads)
    top_k: int = 3
    smoothing: str = "none"
    window: int = 5
    threshold: float = 0.0
    events_only: bool = False
    stdout: bool | None = None  # None: on when there is no JSONL file or MQTT broker
    jsonl: Path | None = None
    jsonl_max_bytes: int = 10_000_000
    jsonl_backups: int = 3
    http: str | None = "127.0.0.1:8080"
    http_token_file: Path | None = None  # else $EDGEPOSE_HTTP_TOKEN; None of both: no token
    http_max_connections: int = 16
    mqtt: str | None = None
    loop: bool = False
    fps: float | None = None
    drop_frames: bool | None = None  # None: drop stale frames of live sources only
    hflip: bool = False
    vflip: bool = False
    max_frames: int | None = None
    duration_s: float | None = None


@dataclass
class ServeSummary:
    """How a service run went: what ran where, the pipeline's own counters, the last label."""

    model: str
    task: str
    source: str
    http_url: str | None
    run: PipelineSummary  # the counters, owned by the pipeline
    last_label: str | None
    threads: int | None = None  # as the interpreter ran (None: the runtime's default)

    def to_dict(self) -> dict[str, Any]:
        """The flat ``serve --json`` record: every pipeline counter, seconds rounded to ms."""
        run = dataclasses.asdict(self.run)
        head = {"model": self.model, "task": self.task, "threads": self.threads,
                "source": self.source, "http_url": self.http_url,
                "stopped_by": run.pop("stopped_by"), "seconds": round(run.pop("seconds"), 3)}
        stalls = run.pop("watchdog_stalls")
        return {**head, **run, "last_label": self.last_label, "watchdog_stalls": stalls}


def build_sinks(config: ServeConfig, metrics: Metrics) -> SinkSet:
    sinks: list[Sink] = []
    stdout = config.stdout if config.stdout is not None else not (config.jsonl or config.mqtt)
    if stdout:
        sinks.append(StdoutSink())
    if config.jsonl:
        sinks.append(JsonlSink(config.jsonl, config.jsonl_max_bytes, config.jsonl_backups))
    if config.mqtt:
        sinks.append(MqttSink(*parse_mqtt(config.mqtt)))
    return SinkSet(sinks, metrics)


def build_pipeline(config: ServeConfig, notifier: SdNotifier | None = None) -> Pipeline:
    """Load the model(s) and build the pipeline, without starting anything."""
    spec = parse_source(config.source)  # fail on a bad --source before loading models
    threads, choice = resolve_threads(config.num_threads, config.model)
    if choice is not None:
        log.info("threads for %s %s", Path(config.model).name, choice.describe())
    classifier = Classifier.from_file(config.model, labels_path=config.labels,
                                      num_threads=threads)
    pose = None
    if classifier.task == "keypoints" and config.pose_model is not None:
        pose = load_pose(config.pose_model, config.pose_detector, config.num_threads)
    engine = Engine(classifier, pose)
    policy = ResultPolicy(engine.labels, config.smoothing, config.window, config.threshold,
                          config.events_only, config.top_k)
    metrics = Metrics()
    sinks = build_sinks(config, metrics)
    open_source = source_factory(spec, size=engine.input_size, loop=config.loop, fps=config.fps,
                                 hflip=config.hflip, vflip=config.vflip)
    pipeline = Pipeline(open_source, engine, policy, sinks, metrics,
                        notifier=notifier, watchdog_s=watchdog_interval(),
                        drop_frames=config.drop_frames)
    pipeline.state.info = {"model": str(config.model), "task": engine.task,
                           "source": str(spec), "threads": threads,
                           "threads_auto": choice.describe() if choice else None}
    return pipeline


def run_service(config: ServeConfig,
                on_listening: Callable[[str], None] | None = None) -> ServeSummary:
    """Run the service until the source ends, a limit is hit, or SIGTERM/SIGINT."""
    # A missing token file must stop the start-up before the model is loaded.
    http_options = HttpOptions(token=read_token(config.http_token_file),
                               max_connections=config.http_max_connections)
    notifier = SdNotifier()
    pipeline = build_pipeline(config, notifier)
    http: HttpService | None = None
    previous: dict[int, object] = {}
    try:
        if config.http:
            host, port = parse_bind(config.http)
            http = HttpService(pipeline.state, host, port, http_options).start()
            log.info("HTTP on %s", http.url)
            if on_listening is not None:
                on_listening(http.url)

        def on_signal(signum: int, _frame) -> None:
            log.info("%s received: stopping", signal.Signals(signum).name)
            notifier.stopping()
            pipeline.stop()

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, on_signal)

        def on_ready() -> None:
            log.info("ready: model %s, source %s", config.model, config.source)
            notifier.ready(pipeline.status_line())

        summary: PipelineSummary = pipeline.run(config.max_frames, config.duration_s, on_ready)
    finally:
        if http is not None:
            http.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        notifier.stopping()
        notifier.close()
    latest, _ = pipeline.state.snapshot()
    log.info("stopped (%s) after %d frames", summary.stopped_by, summary.frames_classified)
    return ServeSummary(str(config.model), pipeline.engine.task, config.source,
                        http.url if http else None, summary, latest.label if latest else None,
                        pipeline.state.info.get("threads"))
