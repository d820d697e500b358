"""How the HTTP interface is reached and guarded: bind address, upload token, limits.

Read by ``edgepose serve`` before anything starts, so a bad ``--http`` value or
a missing token file is a one-line error, never a service running unprotected.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from edgepose.errors import ConfigError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: The environment variable ``edgepose serve`` reads the upload token from (see read_token).
TOKEN_ENV = "EDGEPOSE_HTTP_TOKEN"


@dataclass(frozen=True)
class HttpOptions:
    """Limits and access control of the HTTP interface.

    ``token``: when set, ``POST /classify`` needs ``Authorization: Bearer TOKEN``
    (401 otherwise). ``max_connections``: connections served at once; more get
    503 and are closed (each costs a thread). ``request_timeout_s``: the whole
    request (headers and body) must arrive within it (408 otherwise), so a
    client trickling bytes cannot hold a thread. ``idle_timeout_s``: a
    keep-alive connection with no new request is closed after it.
    ``max_upload_bytes``: the largest body accepted (413).
    """

    token: str | None = None
    max_connections: int = 16
    request_timeout_s: float = 10.0
    idle_timeout_s: float = 5.0
    max_upload_bytes: int = MAX_UPLOAD_BYTES


def read_token(token_file: str | Path | None = None,
               environ: dict[str, str] | None = None) -> str | None:
    """The upload token from ``token_file`` (first line) or ``$EDGEPOSE_HTTP_TOKEN``; or None.

    Raises :class:`ConfigError` when the file is missing or empty: a service
    meant to be protected must not start unprotected.
    """
    env = os.environ if environ is None else environ
    if token_file is not None:
        try:
            text = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{token_file}: cannot read the token file "
                              f"({exc.strerror or exc})") from None
        if not text:
            raise ConfigError(f"{token_file}: the token file is empty")
        return text.splitlines()[0].strip()
    return env.get(TOKEN_ENV) or None


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for 0.0.0.0, :: and real addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def parse_bind(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6; port 0 = any free port) -> ``(host, port)``.

    Raises:
        ConfigError: ``value`` is not ``HOST:PORT``.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--http wants HOST:PORT (e.g. 127.0.0.1:8080), got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)
