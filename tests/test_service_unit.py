"""The systemd unit: sandboxed (checked by the real systemd-analyze), and installed honestly."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess

import pytest

from edgepose.errors import ConfigError
from edgepose.service.unit import UnitOptions, install_unit, render_unit, unreachable_paths
from tests import service_fixtures as fx

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed "
                                          "(apt-get install systemd)")


def exposure(unit_text: str, tmp_path) -> float:
    """The overall exposure ``systemd-analyze security --offline=true`` gives the unit."""
    path = tmp_path / "edgepose-test.service"
    path.write_text(unit_text)
    done = subprocess.run(["systemd-analyze", "security", "--offline=true", str(path)],
                          capture_output=True, text=True, timeout=120)
    found = re.search(r"Overall exposure level for edgepose-test\.service: ([0-9.]+)",
                      done.stdout)
    assert found, done.stdout + done.stderr
    return float(found.group(1))


def verify(unit_text: str, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "edgepose-test.service"
    path.write_text(unit_text)
    return subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                          text=True, timeout=120)


def lines(options: UnitOptions) -> list[str]:
    return render_unit(options).splitlines()


@needs_analyze
@pytest.mark.parametrize("http", ["127.0.0.1:8080", "0.0.0.0:8080"])
def test_the_system_unit_is_rated_ok_by_systemd_analyze_security(tiny_run, tmp_path, http):  # noqa: F811
    text = render_unit(UnitOptions(tiny_run.fp32, "picamera2", output_dir=tmp_path / "out",
                                   http=http))
    assert exposure(text, tmp_path) <= 2.0
    done = verify(text, tmp_path)
    assert (done.returncode, done.stderr.strip()) == (0, "")


def test_the_camera_devices_stay_allowed(tiny_run, tmp_path):  # noqa: F811
    unit = lines(UnitOptions(tiny_run.fp32, "picamera2", output_dir=tmp_path / "out"))
    assert "DevicePolicy=closed" in unit
    assert [line for line in unit if line.startswith("DeviceAllow=")] == [
        "DeviceAllow=char-video4linux rw", "DeviceAllow=char-media rw",
        "DeviceAllow=char-dma_heap rw"]
    assert "SupplementaryGroups=video" in unit
    assert "CapabilityBoundingSet=" in unit
    assert "PrivateDevices=yes" not in unit  # it would hide /dev/video* and /dev/media*


@pytest.mark.parametrize(("http", "serve_args", "allow_ip", "expected"), [
    ("127.0.0.1:8080", [], None, ["IPAddressDeny=any", "IPAddressAllow=localhost"]),
    ("0.0.0.0:8080", [], None, []),
    ("127.0.0.1:8080", ["--mqtt", "broker.lan:1883/edgepose"], None, []),
    ("127.0.0.1:8080", ["--mqtt", "127.0.0.1:1883/edgepose"], None,
     ["IPAddressDeny=any", "IPAddressAllow=localhost"]),
    ("127.0.0.1:8080", [], ["192.168.1.0/24"],
     ["IPAddressDeny=any", "IPAddressAllow=localhost", "IPAddressAllow=192.168.1.0/24"]),
    ("127.0.0.1:8080", [], ["any"], []),
])
def test_ip_traffic_is_loopback_only_unless_configured(tiny_run, tmp_path, http, serve_args,  # noqa: F811
                                                       allow_ip, expected):
    unit = lines(UnitOptions(tiny_run.fp32, "picamera2", output_dir=tmp_path / "out", http=http,
                             extra_args=serve_args, allow_ip=allow_ip))
    assert [line for line in unit if line.startswith("IPAddress")] == expected


@pytest.fixture
def model_in_tmp(tiny_run):  # noqa: F811
    """The tiny fp32 model and its manifest copied under /tmp (PrivateTmp hides it), wherever
    the session's own temporary folder and the checkout are (CI clones, the ARM rig)."""
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="edgepose-unit-", dir="/tmp"))
    model = folder / tiny_run.fp32.name
    shutil.copy(tiny_run.fp32, model)
    manifest = tiny_run.fp32.with_suffix(".json")
    if manifest.is_file():
        shutil.copy(manifest, model.with_suffix(".json"))
    yield model
    shutil.rmtree(folder, ignore_errors=True)


def test_a_model_under_tmp_is_refused_because_private_tmp_hides_it(model_in_tmp, tmp_path):
    options = UnitOptions(model_in_tmp, "test", user_unit=True, output_dir=tmp_path / "out")
    problems = unreachable_paths(options)
    assert problems[0] == (f"the model {model_in_tmp} is under /tmp, which the service cannot "
                           "see (PrivateTmp=yes): move it elsewhere, e.g. /opt or /var/lib")
    with pytest.raises(ConfigError) as info:
        install_unit(options, unit_dir=tmp_path / "units")
    assert str(info.value).startswith(problems[0])
    assert not (tmp_path / "units").exists()
    result = install_unit(options, unit_dir=tmp_path / "units", force=True)
    assert result.warnings == problems


def test_with_unit_dir_no_enable_is_suggested_for_a_unit_systemd_cannot_see(model_in_tmp, tmp_path):
    done = subprocess.run([fx.PYTHON, "-m", "edgepose", "service", "install", "--model",
                           str(model_in_tmp), "--source", "test", "--user", "--output-dir",
                           str(tmp_path / "out"), "--unit-dir", str(tmp_path / "units"),
                           "--force"], capture_output=True, text=True, env=fx.python_env(),
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "systemctl" not in done.stdout
    assert f"{tmp_path / 'units' / 'edgepose.service'} is not where systemd looks" in done.stdout
    assert done.stderr.startswith(f"warning: the model {model_in_tmp} is under /tmp")


def test_without_force_the_cli_refuses_in_one_line(model_in_tmp, tmp_path):
    done = subprocess.run([fx.PYTHON, "-m", "edgepose", "service", "install", "--model",
                           str(model_in_tmp), "--source", "test", "--user", "--unit-dir",
                           str(tmp_path / "units")], capture_output=True, text=True,
                          env=fx.python_env(), timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert f"the model {model_in_tmp} is under /tmp" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a user needs root")
def test_creating_the_system_user_is_said_before_it_happens(tiny_run, tmp_path, monkeypatch):  # noqa: F811
    """A real executable stands in for useradd (the test must not add users to this machine)."""
    marker = tmp_path / "useradd-ran"
    fake = tmp_path / "bin" / "useradd"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {marker}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    heard: list[tuple[str, bool]] = []
    options = UnitOptions(tiny_run.fp32, "test", service_user="edgepose-nobody-test",
                          output_dir=tmp_path / "out")
    with pytest.raises(KeyError):  # the fake created nobody, so chown cannot find the user
        install_unit(options, unit_dir=tmp_path / "units", force=True, reload=False,
                     say=lambda text: heard.append((text, marker.exists())))
    assert heard[0][0].startswith("creating system user 'edgepose-nobody-test' (no home, no "
                                  "login shell")
    assert heard[0][1] is False  # said before useradd ran
    assert "--system" in marker.read_text()


def test_a_model_in_a_private_folder_is_warned_about_for_a_system_unit(tiny_run, tmp_path):  # noqa: F811
    from edgepose.service.unit import permission_warnings

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    model = private / "model.tflite"
    shutil.copy(tiny_run.fp32, model)
    warnings = permission_warnings(UnitOptions(model, "test", output_dir=tmp_path / "out"))
    # The first folder on the way that others cannot search is named (pytest's own, or ours).
    found = next(w for w in warnings if w.startswith(f"the model {model} may be unreadable for "
                                                     "the service user 'edgepose': "))
    assert found.endswith(" is drwx------ (install it under /opt)")
    assert permission_warnings(UnitOptions(model, "test", user_unit=True)) == []


def test_an_output_directory_in_a_home_keeps_home_visible_read_only(tiny_run):  # noqa: F811
    unit = lines(UnitOptions(tiny_run.fp32, "test", output_dir="/home/pi/edgepose-out"))
    assert "ProtectHome=read-only" in unit
    assert "ReadWritePaths=/home/pi/edgepose-out" in unit


def test_print_shows_the_unit_and_warns_on_stderr(model_in_tmp):
    done = subprocess.run([fx.PYTHON, "-m", "edgepose", "service", "install", "--model",
                           str(model_in_tmp), "--source", "test", "--print"],
                          capture_output=True, text=True, env=fx.python_env(), timeout=60)
    assert done.returncode == 0
    assert done.stdout.startswith("# Written by `edgepose service install`")
    assert f"warning: the model {model_in_tmp} is under /tmp, which the service cannot see " \
           "(PrivateTmp=yes): move it elsewhere, e.g. /opt or /var/lib" in done.stderr.splitlines()
