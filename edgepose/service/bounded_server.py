"""The standard library's ThreadingHTTPServer with a connection cap and quiet error logs.

At most ``max_connections`` requests are served at once (each costs a thread);
the next gets a 503 at once and is closed. A client that hangs up or times out
is routine on a network: one log line per kind of error per minute, never a
traceback.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from http.server import ThreadingHTTPServer

from edgepose.service.rate_limited_log import RateLimitedLog

log = logging.getLogger(__name__)


_BUSY_BODY = b'{"error": "too many connections, try again"}\n'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
         b"Retry-After: 1\r\nConnection: close\r\nContent-Length: "
         + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)


class BoundedServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a connection cap and one-line, rate-limited error logs."""

    daemon_threads = True
    max_connections = 16

    def server_activate(self) -> None:
        super().server_activate()
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self._log = RateLimitedLog(60.0, log)
        self.refused = 0

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            self._log.warning("busy", "HTTP: %d connections open, refusing more with 503 "
                              "(%d so far)", self.max_connections, self.refused)
            try:
                request.settimeout(1.0)
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        # The stdlib prints a traceback per failed connection; a client that hangs up
        # or times out is routine for a service on a network, so one line per kind.
        exc = sys.exc_info()[1]
        kind = exc.__class__.__name__ if exc is not None else "error"
        self._log.warning(kind, "HTTP client %s: %s: %s (logged once a minute per kind)",
                          client_address[0], kind, exc)


class BoundedServer6(BoundedServer):
    """:class:`BoundedServer` on IPv6."""

    address_family = socket.AF_INET6
