"""A small HTTP interface on the standard library's ThreadingHTTPServer.

Endpoints::

    GET  /healthz     200 {"status": "ok"} or 503 {"status": "unhealthy", "reason": ...}
    GET  /latest      the newest result as JSON (503 before the first one)
    GET  /metrics     Prometheus text exposition
    GET  /            a live page: current label and the last frame
    GET  /frame.jpg   the last classified frame as JPEG
    POST /classify    classify an uploaded image (the raw image bytes as the body,
                      or a multipart/form-data upload as ``curl -F image=@x.jpg`` sends)

It binds to 127.0.0.1 by default: put a reverse proxy in front of it, or bind
beyond loopback deliberately (a warning is logged). ``POST /classify`` can be
protected with a bearer token (:class:`HttpOptions`, read from a file or an
environment variable, never from the command line where ``ps`` shows it); the
read-only GET endpoints stay open for health checks and Prometheus.

Hostile or broken clients cost bounded resources: at most
``max_connections`` at once (others get 503 at once), each request must arrive
within ``request_timeout_s`` and an idle keep-alive connection is closed after
``idle_timeout_s``; an upload is capped in bytes (413) and in decoded pixels
(413, :data:`edgepose.runtime.preprocess.MAX_IMAGE_PIXELS`, checked before
decoding). A client that goes away mid-request costs one log line per kind
of error per minute, never a traceback.
"""

from __future__ import annotations

import email.parser
import email.policy
import hmac
import io
import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

import numpy as np
from PIL import Image

from edgepose.errors import ConfigError, DataError, EdgeposeError, ImageTooLarge
from edgepose.runtime.preprocess import load_rgb
from edgepose.service.bounded_server import BoundedServer, BoundedServer6
from edgepose.service.http_options import (
    MAX_UPLOAD_BYTES,
    TOKEN_ENV,
    HttpOptions,
    is_loopback,
    parse_bind,
    read_token,
)
from edgepose.service.shared_state import ServiceState

# The options and their parsers are importable from here too (``edgepose serve`` does).
__all__ = ["MAX_UPLOAD_BYTES", "TOKEN_ENV", "HttpOptions", "HttpService", "is_loopback",
           "parse_bind", "read_token"]

log = logging.getLogger(__name__)

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


class _RequestTimeout(Exception):
    """The client did not send its whole request within ``request_timeout_s``."""


def _upload_part(content_type: str, body: bytes) -> bytes:
    """The first file part of a multipart/form-data body (else the first part); raises DataError."""
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
                                + body)
    if not message.is_multipart():
        raise DataError("the multipart body has no parts (is its boundary right?)", "upload")
    parts = [part for part in message.iter_parts() if not part.is_multipart()]
    files = [part for part in parts if part.get_filename()] or parts
    if not files:
        raise DataError("the multipart body has no file part", "upload")
    return files[0].get_payload(decode=True) or b""


def _make_handler(state: ServiceState, options: HttpOptions) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "edgepose"
        protocol_version = "HTTP/1.1"
        # Socket timeout for every read: an idle keep-alive connection ends after it.
        timeout = options.idle_timeout_s

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
            elif path == "/classify":
                self._not_allowed("POST")
            else:
                self._json(404, {"error": f"no such endpoint {path}"})

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET()

        def _not_allowed(self, allow: str) -> None:
            body = (json.dumps({"error": f"method {self.command} not allowed here; use "
                                         f"{allow}"}) + "\n").encode()
            self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
            self.send_header("Allow", allow)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _authorised(self) -> bool:
            if options.token is None:
                return True
            scheme, _, given = (self.headers.get("Authorization") or "").partition(" ")
            # compare_digest: the time taken does not tell how much of a guess was right.
            if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                  options.token.encode()):
                return True
            body = b'{"error": "POST /classify needs Authorization: Bearer <token>"}\n'
            self.send_response(HTTPStatus.UNAUTHORIZED)
            self.send_header("WWW-Authenticate", 'Bearer realm="edgepose"')
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return False

        def _discard_body(self, length: int, deadline: float) -> None:
            """Read and drop a body that was refused, so the client gets to read the answer.

            Closing a socket with unread data makes the kernel send a reset, and a
            client still sending its upload then never sees the 401 or 413 (a
            "lingering close", as web servers do it). Bounded by the request deadline
            and by four times the upload limit.
            """
            left = min(length, 4 * options.max_upload_bytes)
            try:
                self.wfile.flush()
                while left > 0 and time.monotonic() < deadline:
                    chunk = self.rfile.read1(min(left, 65536))
                    if not chunk:
                        break
                    left -= len(chunk)
            except OSError:
                pass  # the client went away: nothing left to protect

        def _read_body(self, length: int, deadline: float) -> bytes:
            chunks, left = [], length
            while left > 0:
                if time.monotonic() > deadline:
                    raise _RequestTimeout
                chunk = self.rfile.read1(min(left, 65536))
                if not chunk:
                    raise ConnectionResetError("client closed the connection mid-body")
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)

        def do_POST(self) -> None:  # noqa: N802
            deadline = time.monotonic() + options.request_timeout_s
            path = self.path.split("?", 1)[0]
            if path != "/classify":
                if path in ("/healthz", "/latest", "/metrics", "/frame.jpg", "/",
                            "/index.html"):
                    self._not_allowed("GET, HEAD")
                else:
                    self._json(404, {"error": f"no such endpoint {path}"})
                return
            self.close_connection = True  # an unread or rejected body must not be parsed as HTTP
            if not self._authorised():
                length = self.headers.get("Content-Length") or ""
                if length.isdigit():
                    self._discard_body(int(length), deadline)
                return
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._json(411, {"error": "send the image as the body with a Content-Length"})
                return
            if int(length) > options.max_upload_bytes:
                self._json(413, {"error": f"upload larger than {options.max_upload_bytes} bytes"})
                self._discard_body(int(length), deadline)
                return
            try:
                body = self._read_body(int(length), deadline)
            except _RequestTimeout:
                self._json(408, {"error": f"the upload took longer than "
                                          f"{options.request_timeout_s:g} s"})
                return
            self.close_connection = False
            content_type = self.headers.get("Content-Type") or ""
            try:
                if content_type.lower().startswith("multipart/"):
                    body = _upload_part(content_type, body)
                rgb = np.asarray(load_rgb(io.BytesIO(body), state.engine.input_size,
                                          name="upload"))
            except ImageTooLarge as exc:
                self._json(413, {"error": str(exc)})
                return
            except DataError as exc:
                self._json(400, {"error": str(exc)})
                return
            try:
                result = state.classify(rgb)
            except EdgeposeError as exc:
                self._json(400, {"error": str(exc)})
                return
            except Exception as exc:
                log.warning("POST /classify failed: %s", exc)
                self._json(500, {"error": f"classification failed ({exc.__class__.__name__})"})
                return
            self._json(200, result.to_dict())

        def do_PUT(self) -> None:  # noqa: N802
            self._not_allowed("POST" if self.path.split("?", 1)[0] == "/classify"
                              else "GET, HEAD")

        do_DELETE = do_PATCH = do_PUT

    return Handler


class HttpService:
    """The HTTP server in a background thread. ``port`` is the real one (after port 0).

    Binding beyond loopback logs a warning (saying whether uploads need a token).
    """

    def __init__(self, state: ServiceState, host: str = "127.0.0.1", port: int = 8080,
                 options: HttpOptions | None = None):
        options = options or HttpOptions()
        base = BoundedServer6 if ":" in host else BoundedServer
        server_class = type("EdgeposeHTTPServer", (base,),
                            {"max_connections": options.max_connections})
        try:
            self.server = server_class((host, port), _make_handler(state, options))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        if not is_loopback(host):
            log.warning("HTTP listens on %s, beyond this machine: anyone who can reach port %d "
                        "can read results%s", host, self.server.server_address[1],
                        "" if options.token else " and POST images to /classify (protect it "
                        f"with --http-token-file or ${TOKEN_ENV})")
        self.options = options
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
