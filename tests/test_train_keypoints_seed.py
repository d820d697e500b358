"""Keypoints the way the seed projects train them: one command, one model per category,
defaults that train seed-sized data (55 to 355 samples, 28 numbers = body14 x, y) well.

Data: tests/keypoint_poses.py's "stance" task (feet close vs apart, bodies
turned and jittered), in pixels like the seed recordings, with no --layout,
--epochs, --batch-size or --patience given.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.data.keypoints import build_keypoint_splits, detect_layout
from edgepose.errors import DataError
from edgepose.train.keypoint_classifier import fit_for_size
from tests.assets import asset_path
from tests.keypoint_poses import make_landmarks, vectors, write_pose_dataset

LANDMARK, DETECTOR = "pose_landmark_full.tflite", "pose_detection.tflite"


@pytest.fixture(scope="module")
def seed_runs(tmp_path_factory) -> tuple[Path, dict]:
    """ROOT/stance (355 samples) and ROOT/execution (243), trained in one CLI call."""
    root = tmp_path_factory.mktemp("seed")
    data = root / "data"
    write_pose_dataset(data, "pixels", per_class=178, seed=1, category="stance", task="stance")
    max((data / "stance" / "up").glob("*.json")).unlink()  # 355 samples, as in the seed
    write_pose_dataset(data, "pixels", per_class=122, seed=2, category="execution",
                       task="stance")
    max((data / "execution" / "up").glob("*.json")).unlink()  # 243
    result = CliRunner().invoke(main, ["train", "keypoints", str(data), "--output",
                                       str(root / "runs"), "--quiet"])
    assert result.exit_code == 0, result.output
    return root / "runs", {"output": result.output}


def _heldout_accuracy(run: Path) -> float:
    import keras

    model = keras.saving.load_model(str(run / "model.keras"), compile=False)
    landmarks, labels = make_landmarks(100, seed=99, task="stance")
    predicted = model.predict_on_batch(vectors(landmarks, "pixels")).argmax(1)
    return float(np.mean(predicted == labels))


def test_one_command_trains_one_model_per_category(seed_runs):
    runs, _ = seed_runs
    assert sorted(p.name for p in runs.iterdir()) == ["execution", "stance"]
    for category in ("execution", "stance"):
        config = json.loads((runs / category / "config.json").read_text())
        assert config["category"] == category and config["classes"] == ["down", "up"]
        assert config["keypoint_layout"] == "body14" and config["keypoint_unit"] == 512.0
        assert (runs / category / "metrics.json").is_file()


def test_each_category_gets_a_summary_line(seed_runs):
    runs, info = seed_runs
    lines = [line for line in info["output"].splitlines()
             if line.startswith(("stance:", "execution:")) and "->" in line]
    assert len(lines) == 2, info["output"]


@pytest.mark.parametrize(("category", "samples"), [("stance", 355), ("execution", 243)])
def test_seed_sized_categories_train_well_above_chance_with_defaults(seed_runs, category,
                                                                    samples):
    run = seed_runs[0] / category
    metrics = json.loads((run / "metrics.json").read_text())
    splits = json.loads((run / "splits.json").read_text())
    assert len(splits["items"]) == samples
    assert metrics["accuracy"] >= 0.85, metrics
    assert _heldout_accuracy(run) >= 0.85


def test_fifty_six_training_samples_train_well_above_chance(tmp_path):
    data = write_pose_dataset(tmp_path / "data", "pixels", per_class=40, seed=3,
                              task="stance")  # 80 files: 56 train, 12 val, 12 test
    result = CliRunner().invoke(main, ["train", "keypoints", str(data), "--output",
                                       str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["split_sizes"]["train"] == 56
    assert (out["fit"]["batch_size"], out["fit"]["patience"]) == (8, 40)
    assert _heldout_accuracy(tmp_path / "run") >= 0.85


@pytest.mark.parametrize(("train_samples", "expected"), [
    (56, {"batch_size": 8, "epochs": 250, "patience": 40}),
    (248, {"batch_size": 32, "epochs": 250, "patience": 40}),
    (2000, {"batch_size": 128, "epochs": 125, "patience": 32}),
    (35000, {"batch_size": 128, "epochs": 40, "patience": 10}),
])
def test_fit_defaults_follow_the_training_set_size(train_samples, expected):
    assert fit_for_size(train_samples) == expected


def test_repeated_category_options_train_each_named_category(tmp_path):
    data = tmp_path / "data"
    for category in ("a", "b", "c"):
        write_pose_dataset(data, "normalized", per_class=12, seed=4, category=category)
    result = CliRunner().invoke(main, [
        "train", "keypoints", str(data), "--category", "a", "--category", "c", "--epochs", "2",
        "--output", str(tmp_path / "runs"), "--json"])
    assert result.exit_code == 0, result.output
    assert [r["category"] for r in json.loads(result.stdout)] == ["a", "c"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["a", "c"]


def test_an_unknown_category_is_refused_before_training(tmp_path):
    data = tmp_path / "data"
    for category in ("a", "b"):
        write_pose_dataset(data, "normalized", per_class=6, category=category)
    result = CliRunner().invoke(main, ["train", "keypoints", str(data), "--category", "a",
                                       "--category", "x", "--output", str(tmp_path / "runs")])
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1].endswith("no category 'x'; found a, b")
    assert not (tmp_path / "runs").exists()


def _sample(path: Path, numbers: int, layout: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"keypoints": [0.5] * numbers, **({"layout": layout} if layout else {})}
    path.write_text(json.dumps(record))


@pytest.mark.parametrize(("numbers", "recorded", "expected"), [
    (132, "mediapipe33", "mediapipe33"),  # what `keypoints extract` writes
    (34, "coco17", "coco17"),
    (28, None, "body14"),  # no layout recorded: the one of that length
    (34, None, "coco17"),
])
def test_the_layout_is_read_from_the_files(tmp_path, numbers, recorded, expected):
    for cls in ("x", "y"):
        _sample(tmp_path / cls / "0.json", numbers, recorded)
    assert detect_layout(tmp_path) == expected


def test_files_recording_different_layouts_are_refused(tmp_path):
    _sample(tmp_path / "x" / "0.json", 34, "coco17")
    _sample(tmp_path / "y" / "0.json", 28, "body14")
    with pytest.raises(DataError, match=r"the files record different layouts \(body14, "
                                        r"coco17\); give --layout"):
        detect_layout(tmp_path)


def test_a_length_no_layout_has_is_refused(tmp_path):
    for cls in ("x", "y"):
        _sample(tmp_path / cls / "0.json", 30)
    with pytest.raises(DataError, match=r"no layout has 30 numbers per sample \(body14 28, "
                                        r"coco17 34, mediapipe33 132\); give --layout"):
        detect_layout(tmp_path)


def test_keypoints_extract_output_trains_without_layout(tmp_path):
    """`keypoints extract` (default layout) on real photos, then `train keypoints` with no
    --layout: the layout the files record is used."""
    import skimage.data
    from PIL import Image

    for cls, photo in (("a", skimage.data.astronaut()), ("b", skimage.data.camera())):
        folder = tmp_path / "images" / cls
        folder.mkdir(parents=True)
        image = Image.fromarray(photo).convert("RGB")
        for i, angle in enumerate((0, 4, -4, 8, -8, 2, -2, 6)):
            image.rotate(angle).save(folder / f"{i}.png")
    extracted = CliRunner().invoke(main, ["keypoints", "extract", str(tmp_path / "images"),
                                          str(tmp_path / "poses"),
                                          "--landmark-model", str(asset_path(LANDMARK)),
                                          "--detector-model", str(asset_path(DETECTOR))])
    assert extracted.exit_code == 0, extracted.output
    record = json.loads(next((tmp_path / "poses" / "a").glob("*.json")).read_text())
    assert record["layout"] == "mediapipe33" and len(record["keypoints"]) == 132
    result = CliRunner().invoke(main, ["train", "keypoints", str(tmp_path / "poses"),
                                       "--epochs", "2", "--output", str(tmp_path / "run"),
                                       "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["layout"] == "mediapipe33"


def test_no_readable_samples_names_the_first_problem(tmp_path):
    for cls in ("x", "y"):
        _sample(tmp_path / cls / "0.json", 34)
    with pytest.raises(DataError, match=r"no readable keypoint samples; 2 problem\(s\), first: "
                                        r"x/0.json: 'keypoints' has 34 numbers, layout body14 "
                                        r"needs 28"):
        build_keypoint_splits(tmp_path, layout="body14")
