"""Where results go: stdout, a rotating JSON Lines file, an MQTT broker.

A sink has ``emit(result)``, ``flush()`` and ``close()``. :class:`SinkSet`
sends each result to every sink and keeps going when one fails (disk full,
broker down): the failure is counted in the metrics and logged, at most once a
minute per sink, and classification never waits for it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from edgepose.errors import ConfigError, RuntimeNotAvailable
from edgepose.service.metrics import Metrics
from edgepose.service.results import FrameResult

log = logging.getLogger(__name__)


class Sink:
    """Base class for result outputs."""

    name = "sink"

    def emit(self, result: FrameResult) -> None:
        """Send one frame result out.

        Raises:
            NotImplementedError: subclasses implement it.
        """
        raise NotImplementedError

    def flush(self) -> None:
        """Push buffered results out (called about once a second and at shutdown)."""

    def close(self) -> None:
        """Flush and release; safe to call twice."""


class StdoutSink(Sink):
    """One line per result: JSON, or a short human-readable line."""

    name = "stdout"

    def __init__(self, stream: TextIO | None = None, as_json: bool = True):
        self.stream = stream or sys.stdout
        self.as_json = as_json

    def emit(self, result: FrameResult) -> None:
        if self.as_json:
            line = json.dumps(result.to_dict())
        else:
            line = (f"frame {result.frame:>7}  {result.label:<20} {result.score:6.3f}  "
                    f"{result.latency_ms:7.2f} ms")
        self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        self.flush()


class JsonlSink(Sink):
    """Append one JSON object per line; rotate by size.

    When the file would grow past ``max_bytes`` it is renamed to ``FILE.1``
    (``FILE.1`` to ``FILE.2`` and so on, keeping ``backups`` old files) and a new
    one is started, so the output never uses more than about
    ``max_bytes * (backups + 1)`` of disk.
    """

    name = "jsonl"

    def __init__(self, path: str | Path, max_bytes: int = 10_000_000, backups: int = 3):
        if max_bytes < 1024:
            raise ConfigError(f"JSONL rotation size must be at least 1024 bytes, got {max_bytes}")
        self.path = Path(path)
        self.max_bytes, self.backups = max_bytes, max(0, backups)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: TextIO | None = None
        self._size = 0

    def _open(self) -> TextIO:
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")
            self._size = self._fh.tell()
        return self._fh

    def _rotate(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def emit(self, result: FrameResult) -> None:
        line = json.dumps(result.to_dict()) + "\n"
        size = len(line.encode("utf-8"))
        fh = self._open()
        if self._size and self._size + size > self.max_bytes:
            self._rotate()
            fh = self._open()
        try:
            fh.write(line)
        except OSError:
            # Disk full or the file vanished: start from a fresh handle next time.
            self._drop_handle()
            raise
        self._size += size

    def _drop_handle(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            try:
                fh.close()
            except OSError:
                pass

    def flush(self) -> None:
        if self._fh is not None:
            try:
                self._fh.flush()
            except OSError:
                self._drop_handle()
                raise

    def close(self) -> None:
        if self._fh is not None:
            try:
                self._fh.flush()
                os.fsync(self._fh.fileno())
            finally:
                self._drop_handle()


def parse_mqtt(spec: str) -> tuple[str, int, str]:
    """``host:port/topic`` (port defaults to 1883) -> ``(host, port, topic)``.

    Raises:
        ConfigError: ``spec`` is not ``host[:port]/topic``, or the port is not a number.
    """
    address, slash, topic = spec.partition("/")
    host, _, port = address.partition(":")
    if not host or not slash or not topic:
        raise ConfigError(f"--mqtt wants host:port/topic, got {spec!r}")
    try:
        return host, int(port or 1883), topic
    except ValueError:
        raise ConfigError(f"--mqtt port must be a number, got {port!r}") from None


class MqttSink(Sink):
    """Publish each result as JSON to an MQTT topic (QoS 0, paho-mqtt).

    The client connects in the background and reconnects by itself; while the
    broker is away a publish fails, is counted, and the result is dropped (paho
    keeps at most ``max_queued`` messages), so memory stays bounded.
    """

    name = "mqtt"

    def __init__(self, host: str, port: int, topic: str, max_queued: int = 100):
        try:
            from paho.mqtt import client as mqtt
        except ImportError:
            raise RuntimeNotAvailable("--mqtt needs paho-mqtt: pip install edgepose[mqtt]") \
                from None
        self.topic = topic
        self._mqtt = mqtt
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"edgepose-{os.getpid()}")
        self.client.max_queued_messages_set(max_queued)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()

    def emit(self, result: FrameResult) -> None:
        """Publish one frame result as JSON (QoS 0: a lost message is not resent).

        Raises:
            ConnectionError: the client refused to queue the message (its error string).
        """
        info = self.client.publish(self.topic, json.dumps(result.to_dict()), qos=0)
        if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"MQTT publish failed: {self._mqtt.error_string(info.rc)}")

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()


class SinkSet:
    """Fan results out to several sinks, isolating their failures."""

    def __init__(self, sinks: list[Sink], metrics: Metrics | None = None,
                 log_every_s: float = 60.0):
        self.sinks = list(sinks)
        self.metrics = metrics
        self.log_every_s = log_every_s
        self._last_log: dict[str, float] = {}

    def _failed(self, sink: Sink, action: str, exc: Exception) -> None:
        if self.metrics is not None:
            self.metrics.sink_error(sink.name)
        now = time.monotonic()
        if now - self._last_log.get(sink.name, -1e9) >= self.log_every_s:
            self._last_log[sink.name] = now
            log.warning("sink %s: %s failed: %s (classification goes on)", sink.name, action, exc)

    def emit(self, result: FrameResult) -> None:
        for sink in self.sinks:
            try:
                sink.emit(result)
            except Exception as exc:  # any sink failure must not stop the loop
                self._failed(sink, "emit", exc)

    def flush(self) -> None:
        for sink in self.sinks:
            try:
                sink.flush()
            except Exception as exc:
                self._failed(sink, "flush", exc)

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                self._failed(sink, "close", exc)
