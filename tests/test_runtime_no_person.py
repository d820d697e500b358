""""Nobody there" is not a pose: reported and left out at training, "no person" at inference.

Kinds covered: an all-zero vector (no person found), too few visible joints
(2-channel missing = (0, 0); MediaPipe visibility < 0.5), NaN and null numbers.
Training: each file is named with its reason and left out of every split.
Inference: ``predict`` (CLI and JSON), the runtime ``Classifier`` and the
service engine answer "no person" as a field, never a class probability.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.data.keypoints import build_keypoint_splits
from edgepose.pose.estimator import PoseResult
from edgepose.runtime.classifier import Classifier
from edgepose.runtime.layouts import get_layout
from edgepose.runtime.presence import min_visible_joints, no_person_reason
from edgepose.service.engine import Engine
from edgepose.service.results import NO_PERSON, ResultPolicy
from tests.keypoint_poses import make_landmarks, vectors, write_pose_dataset

BODY14 = get_layout("body14")
COCO17 = get_layout("coco17")


def _few_visible(layout, visible: int) -> list[float]:
    v = np.zeros(layout.size)
    v[: 2 * visible] = np.linspace(0.3, 0.6, 2 * visible)
    return v.round(4).tolist()


def _write(path: Path, text: str) -> None:
    path.write_text(text)


@pytest.fixture
def dataset(tmp_path) -> Path:
    root = write_pose_dataset(tmp_path / "data", "normalized", per_class=10)
    _write(root / "down" / "zero.json", json.dumps({"keypoints": [0.0] * 28}))
    _write(root / "down" / "three.json", json.dumps({"keypoints": _few_visible(BODY14, 3)}))
    nan = _few_visible(BODY14, 14)
    _write(root / "up" / "nan.json", json.dumps({"keypoints": nan[:5] + [float("nan")]
                                                 + nan[6:]}))
    _write(root / "up" / "null.json", json.dumps({"keypoints": nan[:26] + [None, None]}))
    return root


def test_training_names_each_no_person_file_and_its_reason(dataset):
    report = build_keypoint_splits(dataset, layout="body14")
    assert sorted(map(str, report.problems)) == [
        "down/three.json: no person: 3 of 14 joints visible, need 4; left out",
        "down/zero.json: no person: all 28 keypoint numbers are 0; left out",
        "up/nan.json: no person: 1 of 28 keypoint numbers are NaN or null; left out",
        "up/null.json: no person: 2 of 28 keypoint numbers are NaN or null; left out",
    ]
    assert report.skipped == 4


def test_no_person_files_are_in_no_split(dataset):
    splits = build_keypoint_splits(dataset, layout="body14").splits
    paths = {s.path for s in splits.items}
    assert len(paths) == 20
    assert not paths & {"down/zero.json", "down/three.json", "up/nan.json", "up/null.json"}


def test_csv_rows_without_a_person_are_reported_by_row(tmp_path):
    root = tmp_path / "csvdata"
    root.mkdir()
    data = vectors(make_landmarks(6)[0], "normalized")
    rows = [",".join(["label"] + [f"v{i}" for i in range(28)])]
    rows += [f"{i // 6}," + ",".join(f"{v:.4f}" for v in row) for i, row in enumerate(data)]
    rows.append("0," + ",".join(["0"] * 28))
    (root / "poses.csv").write_text("\n".join(rows) + "\n")
    report = build_keypoint_splits(root, layout="body14")
    assert list(map(str, report.problems)) == [
        "poses.csv#12: no person: all 28 keypoint numbers are 0; left out"]
    assert len(report.splits.items) == 12


@pytest.mark.parametrize(("layout", "visible", "reason"), [
    ("body14", 4, None),
    ("body14", 3, "no person: 3 of 14 joints visible, need 4"),
    ("coco17", 4, "no person: 4 of 17 joints visible, need 5"),
    ("coco17", 5, None),
])
def test_too_few_visible_joints_is_no_person(layout, visible, reason):
    layout = get_layout(layout)
    assert no_person_reason(np.array(_few_visible(layout, visible)), layout) == reason


def test_mediapipe_joints_below_visibility_one_half_do_not_count():
    layout = get_layout("mediapipe33")
    vector = vectors(make_landmarks(1)[0][:1], "mediapipe")[0].copy()
    assert no_person_reason(vector, layout) is None
    vector[3::4] = 0.2  # every landmark found but none visible ...
    vector[3:4 * 8:4] = 0.9  # ... except 8
    assert min_visible_joints(layout) == 9
    assert no_person_reason(vector, layout) == "no person: 8 of 33 joints visible, need 9"


def test_predict_answers_no_person_as_a_field_not_a_class(tiny_run, tmp_path):
    person = tmp_path / "person.json"
    person.write_text(json.dumps({"keypoints": _few_visible(COCO17, 17)}))
    nobody = {"zero.json": [0.0] * 34, "few.json": _few_visible(COCO17, 2),
              "null.json": [None] * 34}
    for name, values in nobody.items():
        (tmp_path / name).write_text(json.dumps({"keypoints": values}))
    files = [str(person)] + [str(tmp_path / name) for name in nobody]
    result = CliRunner().invoke(main, ["predict", str(tiny_run.keypoints), *files, "--json"])
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.stdout)["predictions"]
    assert predictions[0]["no_person"] is None and len(predictions[0]["top"]) == 3
    assert [(p["no_person"], p["top"]) for p in predictions[1:]] == [
        ("no person: all 34 keypoint numbers are 0", []),
        ("no person: 2 of 17 joints visible, need 5", []),
        ("no person: 34 of 34 keypoint numbers are NaN or null", []),
    ]


def test_predict_table_prints_no_person(tiny_run, tmp_path):
    sample = tmp_path / "empty.json"
    sample.write_text(json.dumps({"keypoints": [0] * 34}))
    result = CliRunner().invoke(main, ["predict", str(tiny_run.keypoints), str(sample)])
    assert result.exit_code == 0, result.output
    assert "no person" in result.output  # (the table may wrap the rest of the reason)
    assert not re.search(r"\b(zero|one|two) \d\.\d{3}", result.output)  # no class score


def test_classifier_no_person_is_none_for_image_models(tiny_run):
    classifier = Classifier.from_file(tiny_run.fp32)
    assert classifier.no_person(np.zeros(classifier.input_shape[1:], np.uint8)) is None


class _FixedPose:
    """A pose source that always 'finds' the given 33 x 4 landmarks (the engine's protocol)."""

    def __init__(self, landmarks: np.ndarray):
        self.result = PoseResult(landmarks.astype(np.float32), 0.9, (0.0, 0.0, 1.0, 1.0))

    def estimate(self, rgb):
        return self.result


def test_service_reports_no_person_when_too_few_joints_are_visible(tiny_run):
    landmarks = make_landmarks(1)[0][0]
    landmarks[:, 3] = 0.1  # guessed, not seen: PoseResult.vector("coco17") writes (0, 0)
    landmarks[[11, 12], 3] = 0.9  # two shoulders seen
    engine = Engine(Classifier.from_file(tiny_run.keypoints), pose=_FixedPose(landmarks))
    out = engine.infer(np.zeros((64, 64, 3), np.uint8))
    assert out.probabilities is None and out.person is False
    assert out.extra == {"no_person": "no person: 2 of 17 joints visible, need 5"}
    result = ResultPolicy(engine.labels).single(out.probabilities, latency_ms=1.0,
                                                person=out.person)
    assert (result.label, result.person, result.top_k) == (NO_PERSON, False, [])


def test_pose_vectors_write_joints_mediapipe_does_not_see_as_missing():
    """2-channel layouts have no visibility: an unseen joint must be (0, 0), not a guess."""
    import skimage.data

    from edgepose.pose import PoseEstimator
    from tests.assets import asset_path

    estimator = PoseEstimator.from_files(asset_path("pose_landmark_full.tflite"),
                                         asset_path("pose_detection.tflite"))
    result = estimator.estimate(skimage.data.astronaut())  # upper body: legs off the frame
    visibility = result.keypoints[:, 3]
    coco = COCO17.reshape(result.vector("coco17"))
    for joint, (source,) in zip(COCO17.joints, COCO17.from_mediapipe, strict=True):
        seen = visibility[source] >= 0.5
        assert (coco[COCO17.index(joint)] != 0).any() == seen, joint
    assert not (visibility[[27, 28]] >= 0.5).any()  # the ankles are unseen: written (0, 0)
    assert result.vector("mediapipe33").reshape(33, 4)[:, 3].tolist() == visibility.tolist()
