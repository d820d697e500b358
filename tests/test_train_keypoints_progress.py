"""`train keypoints` says what it read before training, then one line per epoch."""

from __future__ import annotations

import json

from click.testing import CliRunner

from edgepose.cli import main
from tests.keypoint_poses import write_pose_dataset


def _lines(result) -> list[str]:
    return [line.rstrip() for line in result.stdout.splitlines()]


def _index(lines: list[str], prefix: str) -> int:
    return next(i for i, line in enumerate(lines) if line.lstrip().startswith(prefix))


def test_data_summary_and_left_out_files_come_before_the_first_epoch(tmp_path):
    data = write_pose_dataset(tmp_path / "data", "pixels", per_class=12, seed=2)
    (data / "up" / "nobody.json").write_text(json.dumps({"keypoints": [0.0] * 28}))
    result = CliRunner().invoke(main, ["train", "keypoints", str(data), "--epochs", "3",
                                       "--output", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    lines = _lines(result)
    first_epoch = _index(lines, "train epoch 1/3:")
    assert _index(lines, "2 classes: down, up") < first_epoch
    assert _index(lines, "train: ") < first_epoch
    assert _index(lines, "1 file(s) or row(s) left out:") < first_epoch
    assert _index(lines, "up/nobody.json: no person: all 28 keypoint numbers are 0") \
        < first_epoch
    epochs = [line for line in lines if line.startswith("train epoch ")]
    assert [line.split(":")[0] for line in epochs] == [
        "train epoch 1/3", "train epoch 2/3", "train epoch 3/3"]


def test_quiet_and_json_print_no_epoch_lines(tmp_path):
    data = write_pose_dataset(tmp_path / "data", "normalized", per_class=10, seed=3)
    for flag in ("--quiet", "--json"):
        result = CliRunner().invoke(main, ["train", "keypoints", str(data), "--epochs", "2",
                                           "--output", str(tmp_path / flag.strip("-")), flag])
        assert result.exit_code == 0, result.output
        assert not any(line.startswith("train epoch ") for line in _lines(result))


def test_each_category_is_announced_before_its_training(tmp_path):
    for category in ("execution", "stance"):
        write_pose_dataset(tmp_path / "data", "normalized", per_class=10, seed=4,
                           category=category)
    result = CliRunner().invoke(main, ["train", "keypoints", str(tmp_path / "data"),
                                       "--epochs", "2", "--output", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    lines = _lines(result)
    first, second = (_index(lines, "category execution (1 of 2)"),
                     _index(lines, "category stance (2 of 2)"))
    epochs = [i for i, line in enumerate(lines) if line.startswith("train epoch 1/2:")]
    assert len(epochs) == 2 and first < epochs[0] < second < epochs[1]
