"""`edgepose data poses` run outside the checkout finds the models where `keypoints fetch`
put them, and says which command fetches them when they are absent.

Real BlazePose files (the shared asset cache, copied into a temporary home), real
photos from scikit-image, real files; the working directory is never the checkout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.pose.models import DETECTOR_MODEL, LANDMARK_MODEL, fetch_pose_models
from tests.assets import ASSETS


def _errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """cwd and HOME in a fresh folder (no .cache/assets), no EDGEPOSE_MODELS_DIR."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("EDGEPOSE_MODELS_DIR", raising=False)
    return home


def _copy_models(folder: Path) -> Path:
    if not (ASSETS / LANDMARK_MODEL).is_file():
        pytest.skip("BlazePose assets not fetched (python tests/assets.py)")
    folder.mkdir(parents=True, exist_ok=True)
    for name in (LANDMARK_MODEL, DETECTOR_MODEL):
        shutil.copyfile(ASSETS / name, folder / name)
    return folder


def test_without_models_the_error_names_the_fetch_command(elsewhere, tmp_path):
    result = CliRunner().invoke(main, ["data", "poses", str(tmp_path / "out")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert _errors(result) == [
        f"error: {LANDMARK_MODEL} not found in {elsewhere}/.cache/edgepose/models; "
        "run `edgepose keypoints fetch` to download it, or pass --landmark-model PATH"]
    assert not (tmp_path / "out").exists()


def test_the_cache_keypoints_fetch_fills_is_used_from_any_folder(elsewhere, tmp_path):
    pytest.importorskip("skimage", reason="data poses builds from scikit-image's photos "
                        "(host side; a Pi runs keypoints extract on its own photos)")
    cache = _copy_models(elsewhere / ".cache" / "edgepose" / "models")
    fetched = fetch_pose_models()  # already there and verified: nothing downloaded
    assert (Path(fetched.directory), fetched.source) == (cache, "cache")
    # --per-photo 1 keeps it fast: the models ran, and one class stays empty (exit 2, files kept)
    result = CliRunner().invoke(main, ["data", "poses", str(tmp_path / "out"), "--per-photo",
                                       "1", "--json"])
    assert result.exit_code == 2 and "no samples for" in result.stderr, result.output
    report = json.loads((tmp_path / "out" / "poses_report.json").read_text())
    assert report["variants"] == len(report["photos"]) and report["files"]
    assert all((tmp_path / "out" / f).is_file() for f in report["files"])


def test_edgepose_models_dir_is_searched_first(elsewhere, tmp_path, monkeypatch):
    pytest.importorskip("skimage", reason="data poses builds from scikit-image's photos "
                        "(host side; a Pi runs keypoints extract on its own photos)")
    models = _copy_models(tmp_path / "my_models")
    monkeypatch.setenv("EDGEPOSE_MODELS_DIR", str(models))
    result = CliRunner().invoke(main, ["data", "poses", str(tmp_path / "out"), "--per-photo",
                                       "1", "--json"])
    assert result.exit_code == 2 and "no samples for" in result.stderr, result.output
    assert json.loads((tmp_path / "out" / "poses_report.json").read_text())["files"]


def test_a_missing_landmark_model_path_is_one_line(elsewhere, tmp_path):
    missing = tmp_path / "nowhere" / LANDMARK_MODEL
    result = CliRunner().invoke(main, ["data", "poses", str(tmp_path / "out"),
                                       "--landmark-model", str(missing)])
    assert result.exit_code == 2
    assert _errors(result) == [f"error: {missing}: landmark model not found"]
