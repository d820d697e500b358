"""The sd_notify protocol against a real unix datagram socket."""

from __future__ import annotations

import os

from edgepose.service.sdnotify import SdNotifier, watchdog_interval
from tests.service_fixtures import NotifySocket


def test_messages_arrive_on_the_notify_socket(notify_socket):
    notifier = SdNotifier(notify_socket.address)
    assert notifier.ready("loading done")
    assert notifier.watchdog()
    assert notifier.stopping()
    notifier.close()
    assert notify_socket.receive(timeout=1.0, until="STOPPING=1") == [
        "READY=1\nSTATUS=loading done", "WATCHDOG=1", "STOPPING=1"]


def test_abstract_namespace_socket_is_reached_with_an_at_sign():
    sock = NotifySocket(abstract=True)
    try:
        notifier = SdNotifier(sock.address)
        assert notifier.status("12.5 fps")
        notifier.close()
        assert sock.receive(timeout=1.0, until="STATUS") == ["STATUS=12.5 fps"]
    finally:
        sock.close()


def test_without_notify_socket_nothing_is_sent(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SdNotifier()
    assert not notifier.enabled
    assert notifier.ready() is False


def test_watchdog_interval_is_half_of_watchdog_usec():
    assert watchdog_interval({"WATCHDOG_USEC": "10000000"}) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None
