"""`python -m edgepose serve` as a real subprocess, and the systemd unit it installs with."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from edgepose.service.unit import UnitOptions, render_unit
from tests import service_fixtures as fx


class Serve:
    """``python -m edgepose serve ...`` with stderr collected by a thread."""

    def __init__(self, args: list[str], **env: str):
        self.proc = subprocess.Popen([fx.PYTHON, "-m", "edgepose", "serve", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=fx.python_env(**env), cwd=fx.ROOT)
        self.stderr: list[str] = []
        self.stdout = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)

    def url(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            for line in list(self.stderr):
                found = re.search(r"HTTP on (http://\S+)", line)
                if found:
                    return found.group(1)
            time.sleep(0.05)
        raise AssertionError("no HTTP address logged:\n" + "".join(self.stderr))

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.stdout, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise
        self._reader.join(5)
        return self.proc.returncode


def fetch_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for_latest(url: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = fetch_json(url + "/latest")
        if status == 200:
            return body
        time.sleep(0.1)
    raise AssertionError("no result within the timeout")


@pytest.mark.slow
def test_serve_classifies_a_video_and_stops_cleanly_on_sigterm(tiny_run, service_video,
                                                               notify_socket, tmp_path):
    jsonl = tmp_path / "results.jsonl"
    serve = Serve(["--model", str(tiny_run.int8), "--source", f"video:{service_video}", "--loop",
                   "--http", "127.0.0.1:0", "--jsonl", str(jsonl), "--json"],
                  NOTIFY_SOCKET=notify_socket.address, WATCHDOG_USEC="2000000")
    try:
        url = serve.url()
        latest = wait_for_latest(url)
        assert latest["label"] in tiny_run.labels
        assert fetch_json(url + "/healthz") == (200, {"status": "ok"})
        messages = notify_socket.receive(timeout=10, until="READY=1")
        assert any(m.startswith("READY=1") for m in messages)
        notify_socket.receive(timeout=1.5, until="WATCHDOG=1")
    finally:
        code = serve.stop()
    assert code == 0, "".join(serve.stderr)
    messages = notify_socket.receive(timeout=2, until="STOPPING=1")
    assert "WATCHDOG=1" in messages and "STOPPING=1" in messages
    summary = json.loads(serve.stdout)
    assert summary["stopped_by"] == "signal"
    lines = jsonl.read_text().splitlines()
    # Every result made it to the file, whole, before the process exited.
    assert len(lines) == summary["frames_classified"] > 0
    assert all(json.loads(line)["label"] in tiny_run.labels for line in lines)


@pytest.mark.slow
def test_serve_runs_a_keypoint_model_behind_the_real_pose_model(tiny_run, service_video):
    if not (fx.POSE_LANDMARK.is_file() and fx.POSE_DETECTOR.is_file()):
        pytest.skip("pose models not fetched (python tests/assets.py)")
    serve = Serve(["--model", str(tiny_run.keypoints), "--pose-model", str(fx.POSE_LANDMARK),
                   "--pose-detector", str(fx.POSE_DETECTOR), "--source",
                   f"video:{service_video}", "--loop", "--http", "127.0.0.1:0", "--json",
                   "--no-stdout"])
    try:
        url = serve.url()
        labels = set()
        deadline = time.monotonic() + 30
        while len(labels) < 2 and time.monotonic() < deadline:
            labels.add(wait_for_latest(url)["label"])
            time.sleep(0.05)
    finally:
        code = serve.stop()
    assert code == 0, "".join(serve.stderr)
    # The astronaut is a person; the coffee cup and the rocket are not.
    assert "no_person" in labels and labels & set(tiny_run.labels)


def test_a_bad_source_is_one_line_on_stderr_and_a_nonzero_exit(tiny_run):
    done = subprocess.run([fx.PYTHON, "-m", "edgepose", "serve", "--model", str(tiny_run.fp32),
                           "--source", "webcam"], capture_output=True, text=True,
                          env=fx.python_env(), timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("error: unknown source 'webcam'")
    assert "Traceback" not in done.stderr


def test_unit_has_notify_watchdog_hardening_and_the_exact_exec_start(tiny_run, tmp_path):
    text = render_unit(UnitOptions(tiny_run.fp32, "picamera2", output_dir=tmp_path / "out",
                                   watchdog_sec=15))
    for line in ("Type=notify", "WatchdogSec=15", "Restart=on-failure", "User=edgepose",
                 "SupplementaryGroups=video", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "PrivateTmp=yes", f"ReadWritePaths={tmp_path / 'out'}"):
        assert line in text.splitlines()
    assert any(line.startswith("ProtectHome=") for line in text.splitlines())
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    command = exec_start.removeprefix("ExecStart=").split()
    assert command[0].startswith("/") and shutil.os.access(command[0], shutil.os.X_OK)
    assert command[1:5] == ["serve", "--model", str(tiny_run.fp32), "--source"]


def _verify(unit_text: str, tmp_path, user: bool = False) -> subprocess.CompletedProcess:
    path = tmp_path / "edgepose-test.service"
    path.write_text(unit_text)
    args = ["systemd-analyze", *(["--user"] if user else []), "verify", str(path)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (apt-get install systemd)")
def test_generated_unit_passes_systemd_analyze_verify(tiny_run, tmp_path):
    text = render_unit(UnitOptions(tiny_run.fp32, "picamera2", output_dir=tmp_path / "out"))
    done = _verify(text, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


def test_service_install_writes_the_unit_where_asked(tiny_run, tmp_path):
    done = subprocess.run([fx.PYTHON, "-m", "edgepose", "service", "install", "--model",
                           str(tiny_run.fp32), "--source", "test", "--user", "--output-dir",
                           str(tmp_path / "out"), "--unit-dir", str(tmp_path / "units"),
                           "--json", "--force"], capture_output=True, text=True,
                          env=fx.python_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    unit = (tmp_path / "units" / "edgepose.service").read_text()
    assert result["unit_text"] == unit and "User=" not in unit
    assert "WantedBy=default.target" in unit
    # Not installed where systemd looks: no `systemctl enable` for it.
    assert not any("enable" in step for step in result["next_steps"])
    assert (tmp_path / "out").is_dir()


def test_the_service_imports_neither_tensorflow_nor_keras():
    code = ("import sys, edgepose.cli.serve_cmd, edgepose.service.serve, edgepose.service.unit, "
            "edgepose.service.engine; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    done = subprocess.run([fx.PYTHON, "-c", code], capture_output=True, text=True,
                          env=fx.python_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
