"""`edgepose keypoints fetch`: the BlazePose models through pip in one step, verified, cached.

pip runs for real, offline: ``PIP_NO_INDEX`` with ``PIP_FIND_LINKS`` pointing at
the folder that holds the mediapipe 0.10.18 wheel (tests/assets.py caches it),
or at an empty folder to stand for "no network".
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.errors import ModelError
from edgepose.pose.models import (
    DETECTOR_MODEL,
    LANDMARK_MODEL,
    SHA256,
    WHEEL_MEMBERS,
    fetch_pose_models,
    sha256_of,
)
from tests.assets import WHEELS, fetch


@pytest.fixture(scope="module")
def wheel_dir() -> Path:
    if not sorted(WHEELS.glob("mediapipe-0.10.18-*.whl")):
        fetch(LANDMARK_MODEL)  # downloads the wheel once (tests/assets.py)
    return WHEELS


@pytest.fixture
def offline(monkeypatch, tmp_path):
    empty = tmp_path / "no-network"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))


@pytest.fixture
def registry(monkeypatch, wheel_dir):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheel_dir))


def test_fetch_downloads_through_pip_and_verifies(registry, tmp_path):
    result = fetch_pose_models(tmp_path / "models")
    assert result.source == "pip"
    assert sorted(Path(p).name for p in result.files) == sorted([DETECTOR_MODEL, LANDMARK_MODEL])
    for name in (LANDMARK_MODEL, DETECTOR_MODEL):
        assert sha256_of((tmp_path / "models" / name).read_bytes()) == SHA256[name]
    assert not list((tmp_path / "models").glob("*.whl"))  # the wheel is not kept


def test_a_second_fetch_uses_the_cache_without_pip(registry, offline, tmp_path):
    fetch_pose_models(tmp_path / "models", wheel=next(WHEELS.glob("mediapipe-0.10.18-*.whl")))
    result = fetch_pose_models(tmp_path / "models")  # pip could not reach anything now
    assert result.source == "cache"


def test_offline_fetch_says_what_to_copy_where(offline, tmp_path):
    target = tmp_path / "models"
    result = CliRunner().invoke(main, ["keypoints", "fetch", "--out", str(target)])
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: could not download mediapipe==0.10.18 through pip (ERROR: "
                           "No matching distribution found for mediapipe==0.10.18); ")
    assert (f"copy {LANDMARK_MODEL} (sha256 {SHA256[LANDMARK_MODEL]}) and {DETECTOR_MODEL} "
            f"(sha256 {SHA256[DETECTOR_MODEL]}) into {target}/") in line
    assert "edgepose keypoints fetch --from-wheel WHEEL" in line


def test_a_damaged_cached_model_is_fetched_again(registry, tmp_path):
    target = tmp_path / "models"
    fetch_pose_models(target)
    (target / LANDMARK_MODEL).write_bytes(b"truncated")
    assert fetch_pose_models(target).source == "pip"
    assert sha256_of((target / LANDMARK_MODEL).read_bytes()) == SHA256[LANDMARK_MODEL]


def test_a_wheel_with_other_models_is_refused_and_nothing_is_written(tmp_path):
    wheel = tmp_path / "mediapipe-0.10.18-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for member in WHEEL_MEMBERS.values():
            archive.writestr(member, b"not the BlazePose model")
    result = CliRunner().invoke(main, ["keypoints", "fetch", "--from-wheel", str(wheel),
                                       "--out", str(tmp_path / "models")])
    assert result.exit_code == 2
    bad = sha256_of(b"not the BlazePose model")
    assert result.output.strip() == (
        f"error: {wheel}: {LANDMARK_MODEL} has sha256 {bad[:16]}..., not the "
        f"mediapipe==0.10.18 model's {SHA256[LANDMARK_MODEL][:16]}...")
    assert not (tmp_path / "models").exists()


def test_missing_models_point_to_the_fetch_command(tmp_path, monkeypatch):
    from edgepose.pose.models import resolve_pose_models

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDGEPOSE_MODELS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ModelError, match=r"run `edgepose keypoints fetch` to download it"):
        resolve_pose_models()
