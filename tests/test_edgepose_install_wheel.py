"""The device wheel in a FRESH virtual environment, the way a Pi gets it.

Method: the checkout's sources are copied to a temporary folder and built into a
wheel (``pip wheel``, build isolation, setuptools from the wheelhouse); a new
venv (``python -m venv``, pip from ensurepip) installs that wheel with no
extras, offline (``--no-index --find-links`` the wheelhouse); then the venv's own
``edgepose`` console script runs ``predict`` and ``bench`` on the committed
reference model (``models/reference/``, rebuilt by its ``make_reference.py``) and
real digit images written at test time, from a folder outside the checkout, so
nothing but the installed wheel is used; the answers must equal the checkout's.

The wheelhouse (``.cache/wheelhouse/cp<XY>-<machine>/``: the device
dependencies and setuptools) is filled online once by ``make wheelhouse``;
``.ci/run`` does that before ``make test``. Without it these tests skip and
say so. About 40 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgepose.extras import train_extra_hint
from tests.reference_model import MODEL, write_digit_samples

ROOT = Path(__file__).resolve().parents[1]
WHEELHOUSE = ROOT / ".cache" / "wheelhouse" / (
    f"cp{sys.version_info[0]}{sys.version_info[1]}-{platform.machine()}")
# Distributions only the `train` extra (or a stray dependency) would bring.
HOST_DISTRIBUTIONS = {"tensorflow", "tensorflow-cpu", "keras", "tf-keras", "scikit-learn",
                      "matplotlib", "tensorboard", "imagehash"}

pytestmark = pytest.mark.skipif(
    not (WHEELHOUSE / ".complete").is_file(),
    reason=f"no offline wheelhouse at {WHEELHOUSE}: run `make wheelhouse` once (online); "
           ".ci/run does")


@dataclass
class DeviceVenv:
    """A fresh venv with only the edgepose wheel (and its dependencies) installed."""

    path: Path
    wheel: Path
    build_log: str
    workdir: Path  # a folder outside the checkout to run commands from

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def edgepose(self) -> Path:
        return self.path / "bin" / "edgepose"

    def run(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                              cwd=self.workdir, env=_clean_env(), timeout=timeout)


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH (the checkout must not leak in), no user pip config or index."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               PYTHONUNBUFFERED="1", COLUMNS="200")
    return env


def _check(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{done.args}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def device_venv(tmp_path_factory) -> DeviceVenv:
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("edgepose", "converters"):  # converters/ installs as edgepose.converters
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    offline = ["--no-index", "--find-links", str(WHEELHOUSE)]
    env = _clean_env()
    build = _check(subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", *offline,
         "--wheel-dir", str(tmp / "dist"), str(source)],
        capture_output=True, text=True, env=env, timeout=300))
    wheel = next((tmp / "dist").glob("edgepose-*.whl"))
    venv = tmp / "venv"
    _check(subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                          text=True, env=env, timeout=300))
    _check(subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                           *offline, str(wheel)],
                          capture_output=True, text=True, env=env, timeout=600))
    workdir = tmp / "work"
    workdir.mkdir()
    return DeviceVenv(venv, wheel, build.stdout + build.stderr, workdir)


def _installed(venv: DeviceVenv) -> dict[str, str]:
    done = _check(venv.run(venv.python, "-m", "pip", "list", "--format", "json"))
    return {row["name"].lower(): row["version"] for row in json.loads(done.stdout)}


def test_the_wheel_installs_without_any_host_package(device_venv):
    installed = _installed(device_venv)
    assert installed["edgepose"] == "0.1.0"
    assert {"ai-edge-litert", "numpy", "pillow", "click", "rich"} <= set(installed)
    assert HOST_DISTRIBUTIONS & set(installed) == set()


def test_the_installed_package_is_the_wheel_not_the_checkout(device_venv):
    done = _check(device_venv.run(device_venv.python, "-c",
                                  "import edgepose, importlib.util as u; print(edgepose.__file__);"
                                  "print([m for m in ('tensorflow', 'keras', 'sklearn') "
                                  "if u.find_spec(m)])"))
    location, importable = done.stdout.splitlines()
    assert Path(location).is_relative_to(device_venv.path)
    assert importable == "[]"


def test_the_wheel_ships_converters_under_edgepose_not_top_level(device_venv):
    with zipfile.ZipFile(device_venv.wheel) as wheel:
        names = wheel.namelist()
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"edgepose", "edgepose-0.1.0.dist-info"}
    shipped = {Path(name).name for name in names if name.startswith("edgepose/converters/")}
    assert shipped == {path.name for path in (ROOT / "converters").glob("*.py")}
    # and the installed copy imports as edgepose.converters (the mode table needs no TF)
    done = _check(device_venv.run(device_venv.python, "-c",
                                  "import edgepose.converters.modes as m, importlib.util as u;"
                                  "print(m.__file__); print(u.find_spec('converters'))"))
    location, top = done.stdout.splitlines()
    assert Path(location).is_relative_to(device_venv.path) and top == "None"


def test_the_wheel_declares_its_license_as_an_spdx_expression(device_venv):
    with zipfile.ZipFile(device_venv.wheel) as wheel:
        metadata = wheel.read("edgepose-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    # The table form made setuptools print a "`project.license` as a TOML table is
    # deprecated" block (twice) on every build and install.
    assert "deprecated" not in device_venv.build_log.lower()


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """Real digit PNGs in class folders, and the checkout's own predictions for them."""
    root = tmp_path_factory.mktemp("samples")
    images = write_digit_samples(root)
    here = subprocess.run([sys.executable, "-m", "edgepose", "predict", str(MODEL),
                           *map(str, images), "--json"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert here.returncode == 0, here.stderr
    return root, images, json.loads(here.stdout)["predictions"]


def _scores(predictions) -> list[list[tuple[str, float]]]:
    return [[(t["label"], t["score"]) for t in p["top"]] for p in predictions]


def test_predict_in_the_fresh_venv_gives_the_checkouts_answers(device_venv, samples):
    _, images, expected = samples
    assert len(images) == 45
    done = _check(device_venv.run(device_venv.edgepose, "predict", MODEL, *images, "--json"))
    fresh = json.loads(done.stdout)["predictions"]
    assert [p["input"] for p in fresh] == [str(path) for path in images]
    assert _scores(fresh) == _scores(expected)
    # And the answers are right: the reference model knows these digits.
    right = [p["top"][0]["label"] == path.parent.name for p, path in zip(fresh, images,
                                                                         strict=True)]
    assert sum(right) >= 42


def test_bench_in_the_fresh_venv_measures_the_reference_model(device_venv, samples):
    root, images, expected = samples
    out = device_venv.workdir / "bench.json"
    _check(device_venv.run(device_venv.edgepose, "bench", MODEL, "--data", root,
                           "--runs", "5", "--warmup", "1", "--json", out))
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 1
    assert rows[0]["size_bytes"] == MODEL.stat().st_size
    right = [p["top"][0]["label"] == path.parent.name for p, path in zip(expected, images,
                                                                         strict=True)]
    assert rows[0]["accuracy"] == pytest.approx(sum(right) / len(images))


@pytest.mark.parametrize("command, missing", [
    (["train", "image", "data/"], ["tensorflow", "keras", "sklearn", "matplotlib"]),
    (["train", "keypoints", "data/"], ["tensorflow", "keras", "sklearn", "matplotlib"]),
    (["convert", "models/run"], ["tensorflow", "keras"]),
    (["eval", "models/run"], ["tensorflow", "keras", "sklearn", "matplotlib"]),
    (["data", "digits", "out/"], ["sklearn"]),
])
def test_host_only_commands_give_the_train_extra_hint(device_venv, command, missing):
    done = device_venv.run(device_venv.edgepose, *command)
    assert done.returncode == 2
    assert done.stdout == ""
    expected = train_extra_hint("edgepose " + " ".join(command[:-1]), missing)
    assert done.stderr == f"error: {expected}\n"


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs git and a git checkout (pip installs git+file:// of it)")
def test_the_repository_url_installs_the_device_side_only(tmp_path):
    # The README's "straight from the repository URL" route, with this checkout as the
    # repository (its committed HEAD), offline.
    venv = tmp_path / "venv"
    env = _clean_env()
    _check(subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                          text=True, env=env, timeout=300))
    _check(subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                           "--no-index", "--find-links", str(WHEELHOUSE),
                           f"git+file://{ROOT}"],
                          capture_output=True, text=True, env=env, timeout=600))
    device = DeviceVenv(venv, Path(), "", tmp_path)
    installed = _installed(device)
    assert installed["edgepose"] == "0.1.0"
    assert HOST_DISTRIBUTIONS & set(installed) == set()
    done = _check(device.run(device.edgepose, "--version"))
    assert done.stdout.strip() == "edgepose, version 0.1.0"
