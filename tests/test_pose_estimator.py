"""The device-side BlazePose extractor on real photos (skimage.data), via the TFLite interpreter."""

import json
import zipfile

import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from PIL import Image

from edgepose.cli import main
from edgepose.pose import PoseEstimator
from edgepose.pose.anchors import generate_anchors
from edgepose.pose.detector import Roi, crop_roi
from edgepose.pose.models import extract_from_wheel
from tests.assets import asset_path

NOSE, LEFT_HIP, RIGHT_HIP = 0, 23, 24


@pytest.fixture(scope="module")
def estimator():
    return PoseEstimator.from_files(asset_path("pose_landmark_full.tflite"),
                                    asset_path("pose_detection.tflite"))


def test_anchor_count_matches_the_detector_output():
    assert generate_anchors().shape == (2254, 4)


def test_astronaut_gives_33_landmarks_with_nose_above_hips(estimator):
    result = estimator.estimate(skimage.data.astronaut())
    assert result is not None and result.keypoints.shape == (33, 4)
    nose_y = result.keypoints[NOSE, 1]
    assert nose_y < result.keypoints[LEFT_HIP, 1] and nose_y < result.keypoints[RIGHT_HIP, 1]
    assert result.keypoints[NOSE, 3] > 0.5  # the face is clearly visible
    assert 0.5 < result.score <= 1.0


def test_nose_lands_on_the_astronauts_face(estimator):
    x, y = estimator.estimate(skimage.data.astronaut()).keypoints[NOSE, :2]
    assert 0.35 < x < 0.5 and 0.15 < y < 0.32  # her face is centred near (0.42, 0.24)


def test_no_person_in_a_photo_of_coffee(estimator):
    assert estimator.estimate(skimage.data.coffee()) is None


def test_no_person_in_a_flat_image(estimator):
    assert estimator.estimate(np.full((240, 320, 3), 128, dtype=np.uint8)) is None


def test_without_detector_the_centred_square_still_finds_the_astronaut():
    estimator = PoseEstimator.from_files(asset_path("pose_landmark_full.tflite"))
    result = estimator.estimate(skimage.data.astronaut())
    assert result is not None and result.keypoints[NOSE, 1] < result.keypoints[LEFT_HIP, 1]


def test_vector_follows_the_layout_order(estimator):
    result = estimator.estimate(skimage.data.astronaut())
    coco = result.vector("coco17")
    assert coco.dtype == np.float32 and coco.shape == (34,)
    assert np.allclose(coco[:2], result.keypoints[NOSE, :2])
    assert result.vector("mediapipe33").shape == (132,)


def test_mirrored_photo_mirrors_the_landmarks(estimator):
    photo = skimage.data.astronaut()
    a = estimator.estimate(photo).keypoints
    b = estimator.estimate(photo[:, ::-1].copy()).keypoints
    assert abs((1 - b[NOSE, 0]) - a[NOSE, 0]) < 0.03


def test_roi_crop_samples_the_rotated_square():
    image = Image.new("RGB", (100, 100))
    image.paste((255, 0, 0), (0, 0, 50, 100))  # left half red
    crop = crop_roi(image, Roi(50, 50, 100, np.pi), 32)  # turned 180 degrees
    assert crop[16, 28, 0] > 200 and crop[16, 3, 0] < 50


def test_extract_cli_writes_json_per_image_and_lists_no_person(tmp_path):
    images = tmp_path / "images" / "stance" / "correct stance"
    images.mkdir(parents=True)
    Image.fromarray(skimage.data.astronaut()).save(images / "astronaut.jpg")
    Image.fromarray(skimage.data.coffee()).save(images / "coffee.png")
    (images / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "keypoints", "extract", str(tmp_path / "images"), str(out), "--layout", "coco17",
        "--landmark-model", str(asset_path("pose_landmark_full.tflite")),
        "--detector-model", str(asset_path("pose_detection.tflite")), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["no_person"] == ["stance/correct stance/coffee.png"]
    assert report["unreadable"] == ["stance/correct stance/broken.jpg"]
    sample = json.loads((out / "stance" / "correct stance" / "astronaut.json").read_text())
    assert len(sample["keypoints"]) == 34 and sample["category"] == "stance"
    assert sample["score"] > 0.5


def test_models_are_extracted_from_a_mediapipe_wheel(tmp_path):
    wheel = tmp_path / "mediapipe-0.10.18-cp311-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(asset_path("pose_landmark_full.tflite"),
                      "mediapipe/modules/pose_landmark/pose_landmark_full.tflite")
        archive.write(asset_path("pose_detection.tflite"),
                      "mediapipe/modules/pose_detection/pose_detection.tflite")
    written = extract_from_wheel(wheel, tmp_path / "models")
    assert sorted(p.name for p in written) == ["pose_detection.tflite",
                                               "pose_landmark_full.tflite"]
    models = tmp_path / "models"
    estimator = PoseEstimator.from_files(models / "pose_landmark_full.tflite",
                                         models / "pose_detection.tflite")
    assert estimator.estimate(skimage.data.astronaut()) is not None


def test_models_cli_prints_the_pip_download_command():
    result = CliRunner().invoke(main, ["keypoints", "models"])
    assert result.exit_code == 0
    assert "pip download --no-deps" in result.output and "mediapipe==0.10.18" in result.output


def test_extract_with_auto_threads_times_each_pose_model_and_says_so(tmp_path):
    images = tmp_path / "images" / "people"
    images.mkdir(parents=True)
    Image.fromarray(skimage.data.astronaut()).save(images / "astronaut.jpg")
    args = ["keypoints", "extract", str(tmp_path / "images"), str(tmp_path / "out"),
            "--landmark-model", str(asset_path("pose_landmark_full.tflite")),
            "--detector-model", str(asset_path("pose_detection.tflite")), "--threads", "auto"]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    choices = json.loads(result.stdout)["threads_auto"]
    assert sorted(choices) == ["pose_detection.tflite", "pose_landmark_full.tflite"]
    assert all(c.startswith("auto: 1 -> ") for c in choices.values())
    table = CliRunner().invoke(main, args)
    assert "threads for pose_landmark_full.tflite auto: 1 -> " in table.output
    assert json.loads(CliRunner().invoke(main, [*args[:-2], "--json"]).stdout)[
        "threads_auto"] == {}
