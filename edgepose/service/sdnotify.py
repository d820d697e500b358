"""The systemd notification protocol, without a dependency.

A ``Type=notify`` unit tells systemd it is ready by sending ``READY=1`` as one
datagram to the unix socket named in ``$NOTIFY_SOCKET``; with ``WatchdogSec=``
set it must also send ``WATCHDOG=1`` more often than ``$WATCHDOG_USEC``, or
systemd kills and restarts it. A socket name starting with ``@`` lives in the
abstract namespace (the ``@`` becomes a NUL byte). Outside systemd the
variable is unset and every call here does nothing.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or None.

    systemd sets ``$WATCHDOG_PID`` too; when it names another process the
    watchdog is not ours (a child inherited the environment), so None.
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2e6 if value > 0 else None


class SdNotifier:
    """Send state changes to systemd; a no-op when ``$NOTIFY_SOCKET`` is unset."""

    def __init__(self, address: str | None = None):
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.address: str | bytes | None = None
        self._sock: socket.socket | None = None
        self._stopping_sent = False
        if not address:
            return
        if address.startswith("@"):
            self.address = b"\0" + address[1:].encode()
        else:
            self.address = address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, message: str) -> bool:
        """Send one message (``"KEY=value"`` lines); True if it was delivered."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto(message.encode("utf-8"), self.address)
            return True
        except OSError as exc:
            # systemd may be restarting; the service must keep running regardless.
            log.debug("sd_notify %r failed: %s", message, exc)
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def stopping(self) -> bool:
        """Say the service is shutting down (sent once, however often it is called)."""
        if self._stopping_sent:
            return False
        self._stopping_sent = True
        return self.notify("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
