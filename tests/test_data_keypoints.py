"""Keypoint datasets: JSON and CSV loaders, broken files, label disagreements, splits."""

import json
from pathlib import Path

import numpy as np
import pytest

from edgepose.data.keypoints import build_keypoint_splits
from edgepose.errors import DataError
from edgepose.rundir import load_inputs
from edgepose.runtime.keypoint_file import load_keypoint_vector

RNG = np.random.default_rng(0)


def _vector(n=34):
    return [round(float(v), 4) for v in RNG.uniform(0.1, 0.9, n)]


def _write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def _dataset(root: Path, per_class=8, labels=(0, 1)):
    for folder, label in zip(("correct stance", "incorrect stance"), labels, strict=True):
        for i in range(per_class):
            _write(root / "stance" / folder / f"{i:03d}.json",
                   {"keypoints": _vector(), "label": label, "category": "stance",
                    "timestamp": i})
    return root


def test_json_sample_loads_as_float32_vector(tmp_path):
    path = _write(tmp_path / "a.json", {"keypoints": _vector(), "label": 1})
    vector = load_keypoint_vector(path, "coco17")
    assert vector.dtype == np.float32 and vector.shape == (34,)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("", "empty file"),
    ({"label": 0}, "missing field 'keypoints'"),
    ({"keypoints": [0.5] * 30}, "has 30 numbers, layout coco17 needs 34"),
    ('{"keypoints": [' + ", ".join(["0.5"] * 33 + ["NaN"]) + "]}", "NaN or infinite"),
    ('{"keypoints": [' + ", ".join(["0.5"] * 33 + ["Infinity"]) + "]}", "NaN or infinite"),
    ({"keypoints": [0.5] * 33 + [None]}, "is not a number"),
    ({"keypoints": "0.5 0.5"}, "must be a list of numbers"),
    ([1, 2, 3], "expected a JSON object"),
])
def test_broken_json_gives_its_own_one_line_message(tmp_path, content, message):
    path = _write(tmp_path / "bad.json", content)
    with pytest.raises(DataError, match=message) as info:
        load_keypoint_vector(path, "coco17")
    assert "\n" not in str(info.value) and "bad.json" in str(info.value)


def test_csv_rows_load_through_path_with_row_suffix(tmp_path):
    rows = [_vector() for _ in range(3)]
    header = ",".join(["label"] + [f"v{i}" for i in range(34)])
    lines = [header] + [",".join([str(i % 2)] + [str(v) for v in r]) for i, r in enumerate(rows)]
    path = _write(tmp_path / "poses.csv", "\n".join(lines) + "\n")
    vector = load_keypoint_vector(f"{path}#2", "coco17")
    assert np.allclose(vector, rows[2], atol=1e-6)


def test_csv_dataset_splits_and_loads_through_rundir(tmp_path):
    header = ",".join(["label", "timestamp"] + [f"v{i}" for i in range(34)])
    lines = [header] + [",".join([str(i % 2), str(i)] + [str(v) for v in _vector()])
                        for i in range(20)]
    _write(tmp_path / "data" / "poses.csv", "\n".join(lines) + "\n")
    splits = build_keypoint_splits(tmp_path / "data", layout="coco17").splits
    assert splits.items[0].path.startswith("poses.csv#")
    x, y = load_inputs(splits, splits.samples("test"), {"task": "keypoints",
                                                        "keypoint_layout": "coco17"})
    assert x.shape == (len(splits.samples("test")), 34) and x.dtype == np.float32


def test_broken_csv_row_is_reported_and_skipped(tmp_path):
    header = ",".join(["label"] + [f"v{i}" for i in range(34)])
    good = [",".join([str(i % 2)] + [str(v) for v in _vector()]) for i in range(10)]
    bad = ",".join(["0", "oops"] + [str(v) for v in _vector(33)])
    _write(tmp_path / "d" / "t.csv", "\n".join([header, *good, bad]) + "\n")
    report = build_keypoint_splits(tmp_path / "d", layout="coco17")
    assert len(report.splits.items) == 10
    assert any("t.csv#10" in p.path and "not a number" in p.message for p in report.problems)


def test_folder_gives_the_label_when_the_file_has_none(tmp_path):
    for folder in ("correct stance", "incorrect stance"):
        for i in range(4):
            _write(tmp_path / "stance" / folder / f"{i}.json", {"keypoints": _vector()})
    splits = build_keypoint_splits(tmp_path, layout="coco17").splits
    assert splits.classes == ["correct stance", "incorrect stance"]
    assert {s.label for s in splits.items if s.path.startswith("stance/incorrect")} == {1}


def test_file_labels_decide_the_folder_mapping(tmp_path):
    _dataset(tmp_path, labels=(1, 0))  # this dataset says 1 = correct
    splits = build_keypoint_splits(tmp_path, layout="coco17").splits
    assert splits.classes == ["incorrect stance", "correct stance"]


def test_label_disagreeing_with_folder_is_reported_and_folder_wins(tmp_path):
    _dataset(tmp_path)
    _write(tmp_path / "stance" / "correct stance" / "odd.json",
           {"keypoints": _vector(), "label": 1})
    report = build_keypoint_splits(tmp_path, layout="coco17")
    problem = next(p for p in report.problems if p.path.endswith("odd.json"))
    assert "disagrees with folder 'correct stance'" in problem.message
    odd = next(s for s in report.splits.items if s.path.endswith("odd.json"))
    assert odd.label == 0


def test_strict_mode_turns_a_problem_into_an_error(tmp_path):
    _dataset(tmp_path)
    _write(tmp_path / "stance" / "correct stance" / "broken.json", "{")
    with pytest.raises(DataError, match="strict"):
        build_keypoint_splits(tmp_path, layout="coco17", strict=True)
    report = build_keypoint_splits(tmp_path, layout="coco17")
    assert report.skipped == 1


def test_category_selects_one_model_per_category(tmp_path):
    _dataset(tmp_path)
    for folder, label in (("correct execution", 0), ("incorrect execution", 1)):
        for i in range(5):
            _write(tmp_path / "execution" / folder / f"{i}.json",
                   {"keypoints": _vector(), "label": label})
    one = build_keypoint_splits(tmp_path, layout="coco17", category="execution").splits
    assert one.classes == ["correct execution", "incorrect execution"]
    assert one.extra == {"layout": "coco17", "category": "execution"}
    both = build_keypoint_splits(tmp_path, layout="coco17").splits
    assert "stance/correct stance" in both.classes and len(both.classes) == 4


def test_split_is_stratified_and_saved_with_task_keypoints(tmp_path):
    _dataset(tmp_path, per_class=10)
    splits = build_keypoint_splits(tmp_path, layout="coco17", seed=3).splits
    assert splits.task == "keypoints"
    assert all(n > 0 for n in splits.counts()["test"].values())
    splits.save(tmp_path / "splits.json")
    assert json.loads((tmp_path / "splits.json").read_text())["extra"]["layout"] == "coco17"



@pytest.mark.parametrize("layout", ["images", "empty", "flat json"])
def test_a_folder_without_keypoint_data_has_no_categories_but_a_one_line_error(tmp_path,
                                                                                layout):

    from edgepose.data.keypoints import keypoint_categories
    from edgepose.errors import DataError
    from tests.keypoint_poses import write_folder_without_keypoints

    root = write_folder_without_keypoints(tmp_path / "data", layout)
    with pytest.raises(DataError) as info:
        keypoint_categories(root)
    assert str(info.value) == (f"{root}: no keypoint data: expected ROOT/<class>/*.json, "
                               "ROOT/<category>/<class>/*.json or a CSV table")
