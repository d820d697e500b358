"""Seeded training reproduces: the same command twice gives the same weights and metrics.

Every source of randomness in a run is seeded (split, shuffling, augmentation,
dropout, initial weights) and TensorFlow's op determinism is on by default. The
runs are separate processes, started together (as two clones of one commit
would be), because op determinism cannot be switched off in a process again.
What else the exact numbers depend on (core count, oneDNN, CPU) is recorded in
config.json under ``reproducibility``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from edgepose.bench.device import cpu_id
from tests.assets import asset_path

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Three runs of one small, unbalanced dataset: seed 3 twice, seed 4 once."""
    from edgepose.data.digits import write_digits

    work = tmp_path_factory.mktemp("determinism")
    full = write_digits(work / "all", size=32)
    data = work / "data"
    for name, count in (("0", 14), ("1", 14), ("2", 8)):
        (data / name).mkdir(parents=True)
        for path in sorted((full / name).iterdir())[:count]:
            shutil.copy(path, data / name / path.name)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    outputs = {"a": (work / "a", 3), "b": (work / "b", 3), "other_seed": (work / "c", 4)}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "edgepose", "train", "image", str(data),
         "--backbone", "mobilenet_v2", "--input-size", "32",
         "--weights", str(asset_path("dog_breed_mobilenetv2.h5")), "--head", "8",
         "--augment", "medium", "--epochs", "2", "--batch-size", "8",
         "--fine-tune-epochs", "1", "--unfreeze-top", "10", "--fine-tune-lr", "1e-4",
         "--seed", str(seed), "--output", str(out), "--quiet"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for out, seed in outputs.values()]
    for proc in procs:
        output, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, output
    return {name: out for name, (out, _) in outputs.items()}


def _weights(run: Path) -> dict[str, np.ndarray]:
    """Every weight array of the saved model.keras, by its path inside the file."""
    with zipfile.ZipFile(run / "model.keras") as archive:
        blob = archive.read("model.weights.h5")
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(io.BytesIO(blob), "r") as h5:
        h5.visititems(lambda name, obj: arrays.__setitem__(name, obj[()])
                      if isinstance(obj, h5py.Dataset) else None)
    return arrays


def test_two_seeded_runs_save_identical_weights(runs):
    first, second = _weights(runs["a"]), _weights(runs["b"])
    assert len(first) > 100 and first.keys() == second.keys()
    for name in first:
        assert np.array_equal(first[name], second[name]), name


def test_two_seeded_runs_record_identical_history_and_test_metrics(runs):
    assert (runs["a"] / "history.csv").read_text() == (runs["b"] / "history.csv").read_text()
    first = json.loads((runs["a"] / "metrics.json").read_text())
    second = json.loads((runs["b"] / "metrics.json").read_text())
    assert first["accuracy"] == second["accuracy"]
    assert first["confusion_matrix"] == second["confusion_matrix"]
    assert (runs["a"] / "splits.json").read_text() == (runs["b"] / "splits.json").read_text()


def test_another_seed_trains_another_model(runs):
    first, other = _weights(runs["a"]), _weights(runs["other_seed"])
    assert any(not np.array_equal(first[name], other[name]) for name in first)
    assert (runs["a"] / "history.csv").read_text() != \
        (runs["other_seed"] / "history.csv").read_text()


def test_config_records_what_else_the_numbers_depend_on(runs):
    config = json.loads((runs["a"] / "config.json").read_text())
    recorded = config["reproducibility"]
    assert recorded["deterministic_ops"] is True
    assert recorded["cpu_cores"] == len(os.sched_getaffinity(0))
    assert recorded["intra_op_threads"] >= 1
    assert set(recorded) == {"deterministic_ops", "cpu_cores", "intra_op_threads", "onednn",
                             "cpu", "cpu_id"}
    assert recorded["cpu_id"] == cpu_id()
