"""The HTTP interface: a real ThreadingHTTPServer on 127.0.0.1, queried with urllib."""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from PIL import Image

from edgepose.runtime.classifier import Classifier
from edgepose.service.engine import Engine
from edgepose.service.http_server import HttpService, parse_bind
from edgepose.service.pipeline import Pipeline
from edgepose.service.results import ResultPolicy
from edgepose.service.sinks import SinkSet
from edgepose.service.sources import SourceFailed, TestPatternSource
from tests import service_fixtures as fx


def get(url: str, data: bytes | None = None, timeout: float = 5.0):
    """(status, content type, body) for GET, or POST when ``data`` is given."""
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


class Running:
    """A pipeline running in a thread with its HTTP server; stopped by :meth:`close`."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.http = HttpService(pipeline.state, "127.0.0.1", 0).start()
        self.url = self.http.url
        self.thread = threading.Thread(target=pipeline.run, kwargs={"duration_s": 60})
        self.thread.start()

    def close(self) -> None:
        self.pipeline.stop()
        self.thread.join(10)
        self.http.stop()
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def engine(tiny_run) -> Engine:
    return Engine(Classifier.from_file(tiny_run.fp32))


@pytest.fixture(scope="module")
def service(engine):
    pipeline = Pipeline(lambda: TestPatternSource(96, 64, fps=30), engine,
                        ResultPolicy(engine.labels), SinkSet([]))
    running = Running(pipeline)
    deadline = time.monotonic() + 10
    while pipeline.state.snapshot()[0] is None and time.monotonic() < deadline:
        time.sleep(0.02)
    yield running
    running.close()


def test_healthz_is_ok_while_frames_flow(service):
    status, kind, body = get(service.url + "/healthz")
    assert status == 200 and kind == "application/json"
    assert json.loads(body) == {"status": "ok"}


def test_latest_is_the_newest_result_as_json(service, engine):
    status, _, body = get(service.url + "/latest")
    latest = json.loads(body)
    assert status == 200
    assert latest["label"] in engine.labels
    assert {"score", "top_k", "latency_ms", "frame", "timestamp"} <= latest.keys()
    time.sleep(0.2)
    assert json.loads(get(service.url + "/latest")[2])["frame"] > latest["frame"]


def test_metrics_are_prometheus_text_with_a_latency_histogram(service):
    status, kind, body = get(service.url + "/metrics")
    text = body.decode()
    assert status == 200 and kind.startswith("text/plain; version=0.0.4")
    assert "# TYPE edgepose_frames_captured_total counter" in text
    assert "# TYPE edgepose_inference_latency_seconds histogram" in text
    assert 'edgepose_inference_latency_seconds_bucket{le="+Inf"}' in text
    assert 'edgepose_errors_total{kind="bad_frame"} 0' in text
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    assert values["edgepose_frames_classified_total"] > 0
    assert values["edgepose_fps"] > 0
    assert "edgepose_frames_dropped_total" in values


def test_frame_jpg_is_the_last_frame(service):
    status, kind, body = get(service.url + "/frame.jpg")
    assert status == 200 and kind == "image/jpeg"
    assert Image.open(io.BytesIO(body)).size == (96, 64)


def test_live_page_shows_label_and_frame(service):
    status, kind, body = get(service.url + "/")
    assert status == 200 and kind.startswith("text/html")
    assert b'id="label"' in body and b"frame.jpg" in body and b"latest" in body


def test_post_classify_labels_an_uploaded_photo(service, engine):
    buffer = io.BytesIO()
    Image.fromarray(fx.photos()[2]).save(buffer, format="PNG")
    status, _, body = get(service.url + "/classify", data=buffer.getvalue())
    result = json.loads(body)
    assert status == 200
    assert result["label"] in engine.labels
    direct = engine.infer(fx.photos()[2]).probabilities
    assert result["top_k"][0]["score"] == pytest.approx(float(direct.max()), abs=1e-5)


def test_post_classify_rejects_bytes_that_are_not_an_image(service):
    status, _, body = get(service.url + "/classify", data=b"definitely not an image")
    assert status == 400 and "not a readable image" in json.loads(body)["error"]


def test_unknown_path_is_404(service):
    assert get(service.url + "/nope")[0] == 404


def test_healthz_is_503_with_the_reason_while_the_camera_is_reopened(engine):
    def broken_camera():
        raise SourceFailed("cannot open camera '/dev/video0'")

    pipeline = Pipeline(broken_camera, engine, ResultPolicy(engine.labels), SinkSet([]),
                        backoff=(0.05, 0.2))
    running = Running(pipeline)
    try:
        deadline = time.monotonic() + 5
        while pipeline.metrics.snapshot().source_failures < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        status, _, body = get(running.url + "/healthz")
        assert status == 503
        assert "/dev/video0" in json.loads(body)["reason"]
        assert "edgepose_up 0" in get(running.url + "/metrics")[2].decode()
    finally:
        running.close()


def test_bind_address_parsing():
    assert parse_bind("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_bind("[::1]:8080") == ("::1", 8080)
    with pytest.raises(Exception, match="HOST:PORT"):
        parse_bind("localhost")
