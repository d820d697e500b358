"""``edgepose serve --threads``: auto timed per model at start-up and logged, the count in
``--json``; a keypoint model's pose models get the threads too (they are the heavy part)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from edgepose.service import engine
from tests import service_fixtures as fx


def _serve(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([fx.PYTHON, "-m", "edgepose", "serve", *args, "--no-http",
                           "--no-stdout", "--json"], capture_output=True, text=True,
                          env=fx.python_env(), timeout=180)


def _auto_lines(stderr: str, model: Path) -> list[str]:
    return [line for line in stderr.splitlines()
            if f"threads for {model.name} auto: 1 -> " in line]


def test_serve_with_auto_threads_logs_the_timing_and_reports_the_count(tiny_run, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("000.png", "001.png"):
        (folder / name).write_bytes((tiny_run.data / "one" / name).read_bytes())
    done = _serve(["--model", str(tiny_run.fp32), "--source", f"dir:{folder}", "--threads",
                   "auto"])
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["frames_classified"] == 2
    [logged] = _auto_lines(done.stderr, tiny_run.fp32)
    assert logged.endswith(f"; {summary['threads']} thread"
                           + ("s" if summary["threads"] > 1 else ""))


@pytest.mark.slow
def test_auto_threads_time_the_pose_models_of_a_keypoint_service(tiny_run, photo_dir):
    if not (fx.POSE_LANDMARK.is_file() and fx.POSE_DETECTOR.is_file()):
        pytest.skip("pose models not fetched (python tests/assets.py)")
    done = _serve(["--model", str(tiny_run.keypoints), "--pose-model", str(fx.POSE_LANDMARK),
                   "--pose-detector", str(fx.POSE_DETECTOR), "--source", f"dir:{photo_dir}",
                   "--max-frames", "2", "--threads", "auto"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["frames_classified"] == 2
    for model in (tiny_run.keypoints, fx.POSE_LANDMARK, fx.POSE_DETECTOR):
        assert len(_auto_lines(done.stderr, model)) == 1, (model, done.stderr)


def test_a_thread_count_reaches_both_pose_models(monkeypatch):
    """Before, ``serve --threads 4`` set only the keypoint MLP's interpreter."""
    from edgepose.pose.detector import PoseDetector
    from edgepose.pose.landmarks import LandmarkModel

    loaded = []
    monkeypatch.setattr(LandmarkModel, "from_file",
                        classmethod(lambda cls, path, n=None: loaded.append((path, n)) or "lm"))
    monkeypatch.setattr(PoseDetector, "from_file",
                        classmethod(lambda cls, path, n=None: loaded.append((path, n)) or "det"))
    estimator = engine.load_pose("landmark.tflite", "detector.tflite", 3)
    assert sorted(loaded) == [("detector.tflite", 3), ("landmark.tflite", 3)]
    assert (estimator.landmarks, estimator.detector, estimator.thread_choices) == \
        ("lm", "det", {})
