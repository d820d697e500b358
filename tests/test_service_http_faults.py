"""The HTTP interface against hostile and broken clients: a real server, raw sockets."""

from __future__ import annotations

import io
import json
import logging
import socket
import struct
import threading
import time
import urllib.error
import urllib.request

import pytest
from PIL import Image

from edgepose.errors import ConfigError
from edgepose.runtime.classifier import Classifier
from edgepose.service.engine import Engine
from edgepose.service.http_server import HttpOptions, HttpService, is_loopback, read_token
from edgepose.service.pipeline import Pipeline
from edgepose.service.results import ResultPolicy
from edgepose.service.sinks import SinkSet
from edgepose.service.sources import TestPatternSource
from tests import service_fixtures as fx


def request(url: str, data: bytes | None = None, method: str | None = None,
            headers: dict | None = None, timeout: float = 10.0):
    """(status, headers, body) of one request with urllib."""
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def png(rgb) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def engine(tiny_run) -> Engine:  # noqa: F811
    return Engine(Classifier.from_file(tiny_run.fp32))


@pytest.fixture(scope="module")
def pipeline(engine):
    pipe = Pipeline(lambda: TestPatternSource(96, 64, fps=20), engine,
                    ResultPolicy(engine.labels), SinkSet([]))
    thread = threading.Thread(target=pipe.run, kwargs={"duration_s": 120})
    thread.start()
    yield pipe
    pipe.stop()
    thread.join(10)


@pytest.fixture
def serve(pipeline):
    """Start an HttpService on a free loopback port with the given options."""
    started: list[HttpService] = []

    def start(**options) -> HttpService:
        http = HttpService(pipeline.state, "127.0.0.1", 0, HttpOptions(**options)).start()
        started.append(http)
        return http

    yield start
    for http in started:
        http.stop()


def peak_rss_reset() -> bool:
    """Reset this process's peak RSS (VmHWM) so a later reading measures what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


# -- oversized and odd uploads ----------------------------------------------------------------


def test_a_17_kb_upload_of_144_megapixels_gets_413_and_costs_no_memory(serve, tmp_path):
    http = serve()
    body = fx.write_huge_png(tmp_path / "big.png", 12000, 12000).read_bytes()
    assert len(body) < 20_000
    measured = peak_rss_reset()
    before = peak_rss_mb()
    results = []

    def post():
        results.append(request(http.url + "/classify", body))

    threads = [threading.Thread(target=post) for _ in range(2)]  # two at once
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for status, _, answer in results:
        assert status == 413
        assert json.loads(answer) == {"error": "upload: image is 12000x12000 = 144.0 megapixels, "
                                               "over edgepose's decode limit of 40 megapixels"}
    if measured:
        assert peak_rss_mb() - before < 50  # was +1.5 GB per upload


def test_a_20000_pixel_bomb_gets_a_413_answer(serve, tmp_path):
    http = serve()
    body = fx.write_huge_png(tmp_path / "bomb.png", 20000, 20000).read_bytes()
    status, _, answer = request(http.url + "/classify", body)
    assert status == 413
    assert json.loads(answer)["error"] == ("upload: image is 400.0 megapixels, over edgepose's "
                                           "decode limit of 40 megapixels")
    assert request(http.url + "/healthz")[0] == 200


def test_a_body_over_the_byte_limit_gets_413_before_it_is_read(serve):
    http = serve(max_upload_bytes=1000)
    status, _, answer = request(http.url + "/classify", b"x" * 5000)
    assert status == 413
    assert json.loads(answer) == {"error": "upload larger than 1000 bytes"}


def test_a_multipart_upload_is_classified_like_a_raw_one(serve, engine):
    http = serve()
    photo = png(fx.photos()[1])
    body, content_type = fx.multipart_upload("image", "coffee.png", photo)
    status, _, answer = request(http.url + "/classify", body,
                                headers={"Content-Type": content_type})
    assert status == 200
    raw = json.loads(request(http.url + "/classify", photo)[2])
    assert json.loads(answer)["top_k"] == raw["top_k"]


def test_a_multipart_upload_of_a_non_image_is_a_clean_400(serve):
    http = serve()
    body, content_type = fx.multipart_upload("image", "notes.txt", b"just some text")
    status, _, answer = request(http.url + "/classify", body,
                                headers={"Content-Type": content_type})
    assert status == 400
    assert json.loads(answer) == {"error": "upload: not a readable image (no image format "
                                           "recognised)"}


def test_bytes_that_are_no_image_get_400_without_an_object_repr(serve):
    http = serve()
    status, _, answer = request(http.url + "/classify", b"definitely not an image")
    assert status == 400 and b"object at" not in answer
    assert json.loads(answer) == {"error": "upload: not a readable image (no image format "
                                           "recognised)"}


def test_wrong_methods_get_405_with_allow(serve):
    http = serve()
    status, headers, _ = request(http.url + "/classify")
    assert (status, headers["Allow"]) == (405, "POST")
    status, headers, _ = request(http.url + "/healthz", b"x")
    assert (status, headers["Allow"]) == (405, "GET, HEAD")
    status, headers, _ = request(http.url + "/classify", b"x", method="PUT")
    assert (status, headers["Allow"]) == (405, "POST")


# -- slow, idle, aborted and too many clients -------------------------------------------------


def connect(http: HttpService) -> socket.socket:
    return socket.create_connection(("127.0.0.1", http.port), timeout=5)


def test_an_idle_connection_is_closed_after_the_idle_timeout(serve):
    http = serve(idle_timeout_s=0.5)
    sock = connect(http)
    started = time.monotonic()
    assert sock.recv(100) == b""  # the server closed it
    assert 0.4 < time.monotonic() - started < 3.0
    sock.close()


def test_a_trickled_upload_gets_408_at_the_request_deadline(serve):
    http = serve(request_timeout_s=0.6, idle_timeout_s=5)
    sock = connect(http)
    sock.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
    started = time.monotonic()
    answer = fx.trickle(sock, chunks=40, pause_s=0.1)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 2.0


def test_connections_beyond_the_cap_get_503_at_once(serve):
    http = serve(max_connections=2, idle_timeout_s=5)
    held = [connect(http), connect(http)]
    time.sleep(0.2)  # let the server accept both
    extra = connect(http)
    assert extra.recv(200).startswith(b"HTTP/1.1 503 Service Unavailable")
    extra.close()
    for sock in held:
        sock.close()
    time.sleep(0.3)
    assert request(http.url + "/healthz")[0] == 200


def test_aborted_connections_log_one_line_per_kind_and_no_traceback(serve, caplog, capfd):
    http = serve()
    with caplog.at_level(logging.DEBUG, logger="edgepose.service.http_server"):
        for i in range(30):
            sock = connect(http)
            if i % 2:  # a body promised and never sent
                sock.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Length: 9999\r\n"
                             b"\r\npartial")
            else:  # a request, then a reset instead of reading the answer
                sock.sendall(b"GET /frame.jpg HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        time.sleep(0.5)
    assert request(http.url + "/healthz")[0] == 200
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    kinds = {r.getMessage().split(":")[1].strip() for r in warnings}
    assert 1 <= len(warnings) == len(kinds) <= 3
    assert "Traceback" not in capfd.readouterr().err


# -- who may upload ---------------------------------------------------------------------------


def test_uploads_need_the_bearer_token_when_one_is_set(serve):
    http = serve(token="s3cret-token")
    photo = png(fx.photos()[0])
    status, headers, answer = request(http.url + "/classify", photo)
    assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="edgepose"')
    assert json.loads(answer) == {"error": "POST /classify needs Authorization: Bearer <token>"}
    assert request(http.url + "/classify", photo,
                   headers={"Authorization": "Bearer wrong"})[0] == 401
    assert request(http.url + "/classify", photo,
                   headers={"Authorization": "Bearer s3cret-token"})[0] == 200
    assert request(http.url + "/healthz")[0] == 200  # reads stay open for health checks


def test_the_token_comes_from_a_file_or_the_environment(tmp_path):
    path = tmp_path / "token"
    path.write_text("abc123\n")
    assert read_token(path, environ={}) == "abc123"
    assert read_token(None, environ={"EDGEPOSE_HTTP_TOKEN": "from-env"}) == "from-env"
    assert read_token(None, environ={}) is None
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError) as info:
        read_token(tmp_path / "empty", environ={})
    assert str(info.value) == f"{tmp_path / 'empty'}: the token file is empty"
    with pytest.raises(ConfigError, match="cannot read the token file"):
        read_token(tmp_path / "missing", environ={})


def test_binding_beyond_loopback_warns(pipeline, caplog):
    with caplog.at_level(logging.WARNING, logger="edgepose.service.http_server"):
        http = HttpService(pipeline.state, "0.0.0.0", 0)
        http.stop()
        protected = HttpService(pipeline.state, "0.0.0.0", 0, HttpOptions(token="t"))
        protected.stop()
        HttpService(pipeline.state, "127.0.0.1", 0).stop()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        f"HTTP listens on 0.0.0.0, beyond this machine: anyone who can reach port "
        f"{http.port} can read results and POST images to /classify (protect it with "
        "--http-token-file or $EDGEPOSE_HTTP_TOKEN)",
        f"HTTP listens on 0.0.0.0, beyond this machine: anyone who can reach port "
        f"{protected.port} can read results"]


def test_loopback_addresses():
    assert is_loopback("127.0.0.1") and is_loopback("127.1.2.3") and is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::")
    assert not is_loopback("192.168.1.20") and not is_loopback("pi.local")


def test_a_large_refused_upload_still_gets_its_answer(serve):
    """The client is still sending when the server refuses: it must read 413, not a reset.

    8 MB is more than loopback's socket buffers hold, and within the 4x the limit
    the server reads and drops before it closes.
    """
    http = serve(max_upload_bytes=2 * 1024 * 1024)
    for _ in range(3):
        status, _, answer = request(http.url + "/classify", b"x" * (8 * 1024 * 1024))
        assert (status, json.loads(answer)) == (413, {"error": "upload larger than 2097152 "
                                                               "bytes"})
