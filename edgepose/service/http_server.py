"""A small HTTP interface on the standard library's ThreadingHTTPServer.

Endpoints::

    GET  /healthz     200 {"status": "ok"} or 503 {"status": "unhealthy", "reason": ...}
    GET  /latest      the newest result as JSON (503 before the first one)
    GET  /metrics     Prometheus text exposition
    GET  /            a live page: current label and the last frame
    GET  /frame.jpg   the last classified frame as JPEG
    POST /classify    classify an uploaded image (the raw image bytes as the body)

It binds to 127.0.0.1 by default: put a reverse proxy in front of it, or bind
to 0.0.0.0 deliberately, to reach it from the network. There is no
authentication.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgepose.errors import ConfigError, EdgeposeError
from edgepose.runtime.preprocess import as_rgb_image
from edgepose.service.pipeline import ServiceState

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>edgepose</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5em; background: #111; color: #eee; }
 #label { font-size: 2.5em; font-weight: bold; }
 #score, #meta { color: #aaa; }
 img { width: 100%; max-width: 640px; border: 1px solid #333; margin-top: 1em; }
 .bad { color: #f66; }
</style></head>
<body>
<div id="label">&hellip;</div>
<div id="score"></div>
<div id="meta"></div>
<img id="frame" alt="last frame" src="frame.jpg">
<script>
async function tick() {
  try {
    const r = await fetch("latest", {cache: "no-store"});
    if (r.ok) {
      const j = await r.json();
      document.getElementById("label").textContent = j.label;
      document.getElementById("score").textContent =
        j.top_k.map(p => p.label + " " + p.score.toFixed(3)).join("  \\u00b7  ");
      document.getElementById("meta").textContent =
        "frame " + j.frame + ", " + j.latency_ms.toFixed(1) + " ms";
    }
    const h = await fetch("healthz", {cache: "no-store"});
    const meta = document.getElementById("meta");
    if (!h.ok) { meta.className = "bad"; meta.textContent = (await h.json()).reason; }
    else { meta.className = ""; }
    document.getElementById("frame").src = "frame.jpg?t=" + Date.now();
  } catch (e) { /* the service is restarting; try again */ }
  setTimeout(tick, 500);
}
tick();
</script>
</body></html>
"""


def parse_bind(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6; port 0 = any free port) -> ``(host, port)``."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--http wants HOST:PORT (e.g. 127.0.0.1:8080), got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def _make_handler(state: ServiceState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "edgepose"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
            log.debug("%s %s", self.address_string(), format % args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, obj: object) -> None:
            self._send(status, (json.dumps(obj) + "\n").encode(), "application/json")

        def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                ok, reason = state.health.status()
                if ok:
                    self._json(200, {"status": "ok"})
                else:
                    self._json(503, {"status": "unhealthy", "reason": reason})
            elif path == "/latest":
                latest, _ = state.snapshot()
                if latest is None:
                    self._json(503, {"error": "no frame classified yet"})
                else:
                    self._json(200, latest.to_dict())
            elif path == "/metrics":
                ok, _ = state.health.status()
                self._send(200, state.metrics.render_prometheus(ok).encode(),
                           "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/frame.jpg":
                _, frame = state.snapshot()
                if frame is None:
                    self._json(404, {"error": "no frame yet"})
                    return
                buffer = io.BytesIO()
                Image.fromarray(frame).save(buffer, format="JPEG", quality=80)
                self._send(200, buffer.getvalue(), "image/jpeg")
            elif path in ("/", "/index.html"):
                self._send(200, PAGE.encode(), "text/html; charset=utf-8")
            else:
                self._json(404, {"error": f"no such endpoint {path}"})

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET()

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path != "/classify":
                self._json(404, {"error": f"no such endpoint {path}"})
                return
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._json(411, {"error": "send the image as the body with a Content-Length"})
                return
            if int(length) > MAX_UPLOAD_BYTES:
                self.close_connection = True
                self._json(413, {"error": f"image larger than {MAX_UPLOAD_BYTES} bytes"})
                return
            body = self.rfile.read(int(length))
            try:
                with Image.open(io.BytesIO(body)) as img:
                    img.load()
                    rgb = np.asarray(as_rgb_image(img))
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                self._json(400, {"error": f"not a readable image ({exc})"})
                return
            try:
                result = state.classify(rgb)
            except EdgeposeError as exc:
                self._json(400, {"error": str(exc)})
                return
            except Exception as exc:
                log.warning("POST /classify failed: %s", exc)
                self._json(500, {"error": str(exc)})
                return
            self._json(200, result.to_dict())

        def do_PUT(self) -> None:  # noqa: N802
            self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "method not allowed"})

        do_DELETE = do_PUT

    return Handler


class _ThreadingHTTPServer6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class HttpService:
    """The HTTP server in a background thread. ``port`` is the real one (after port 0)."""

    def __init__(self, state: ServiceState, host: str = "127.0.0.1", port: int = 8080):
        server_class = _ThreadingHTTPServer6 if ":" in host else ThreadingHTTPServer
        try:
            self.server = server_class((host, port), _make_handler(state))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.server.daemon_threads = True
        self.host = host
        self.port = int(self.server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> HttpService:
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, name="http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5.0)
            self._thread = None
        self.server.server_close()
