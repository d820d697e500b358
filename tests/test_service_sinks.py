"""Result sinks: a rotating JSONL file, isolation of a failing sink, and MQTT."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from edgepose.errors import ConfigError
from edgepose.runtime.classifier import Classification
from edgepose.service.metrics import Metrics
from edgepose.service.results import FrameResult
from edgepose.service.sinks import JsonlSink, MqttSink, SinkSet, StdoutSink, parse_mqtt


def result(frame: int, label: str = "sit") -> FrameResult:
    return FrameResult(label, 0.9, [Classification(0, label, 0.9),
                                       Classification(1, "stand", 0.1)],
                       1.5, 3.0, frame, 1700000000.0 + frame)


def test_jsonl_rotates_by_size_and_keeps_a_bounded_number_of_files(tmp_path):
    sink = JsonlSink(tmp_path / "results.jsonl", max_bytes=2048, backups=2)
    for i in range(200):
        sink.emit(result(i))
    sink.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["results.jsonl", "results.jsonl.1", "results.jsonl.2"]
    assert all((tmp_path / f).stat().st_size <= 2048 for f in files)
    last = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert last[-1]["frame"] == 199 and last[-1]["top_k"][0] == {"label": "sit", "score": 0.9}
    older = (tmp_path / "results.jsonl.1").read_text().splitlines()
    assert json.loads(older[-1])["frame"] == last[0]["frame"] - 1


def test_a_full_disk_is_counted_and_the_other_sinks_still_get_results():
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full (always ENOSPC) is not available")
    metrics = Metrics()
    out = io.StringIO()
    sinks = SinkSet([JsonlSink("/dev/full"), StdoutSink(out)], metrics)
    for i in range(3):
        sinks.emit(result(i))
        sinks.flush()  # the buffered write reaches the device here: ENOSPC
    sinks.close()
    assert len(out.getvalue().splitlines()) == 3
    assert metrics.snapshot().sink_errors["jsonl"] >= 3


def test_mqtt_spec_parsing():
    assert parse_mqtt("broker.local/edgepose/results") == ("broker.local", 1883,
                                                           "edgepose/results")
    assert parse_mqtt("127.0.0.1:1884/t") == ("127.0.0.1", 1884, "t")
    with pytest.raises(ConfigError):
        parse_mqtt("127.0.0.1:1883")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mosquitto(tmp_path):
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(binary):
        pytest.skip("no local MQTT broker (apt-get install mosquitto)")
    pytest.importorskip("paho.mqtt.client")
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(timeout=5)


def test_mqtt_sink_publishes_results_to_a_real_broker(mosquitto):
    from paho.mqtt import client as mqtt

    received: list[dict] = []
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    subscriber.on_message = lambda c, u, msg: received.append(json.loads(msg.payload))
    subscriber.connect("127.0.0.1", mosquitto)
    subscriber.subscribe("edgepose/test", qos=0)
    subscriber.loop_start()
    sink = MqttSink("127.0.0.1", mosquitto, "edgepose/test")
    try:
        deadline = time.monotonic() + 5
        frame = 0
        while not received and time.monotonic() < deadline:
            frame += 1
            try:
                sink.emit(result(frame))
            except ConnectionError:
                pass  # still connecting
            time.sleep(0.05)
    finally:
        sink.close()
        subscriber.loop_stop()
        subscriber.disconnect()
    assert received and received[0]["label"] == "sit"


def test_mqtt_broker_down_is_a_counted_sink_error_not_a_crash():
    pytest.importorskip("paho.mqtt.client")
    metrics = Metrics()
    sinks = SinkSet([MqttSink("127.0.0.1", _free_port(), "t")], metrics)
    for i in range(5):
        sinks.emit(result(i))
    sinks.close()
    assert metrics.snapshot().sink_errors["mqtt"] == 5
