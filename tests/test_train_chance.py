"""A run whose accuracy is at chance, or that answers one class, says so (issue 11, sec. 7)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from edgepose.train.chance import (
    QualityReport,
    TrainingAtChance,
    check_confusion,
    print_warnings,
    raise_if_failed,
)


def _confusion(y_true, y_pred, classes):
    matrix = np.zeros((classes, classes), dtype=int)
    for t, p in zip(y_true, y_pred, strict=True):
        matrix[t, p] += 1
    return matrix


def test_one_class_for_everything_on_ten_balanced_classes_is_at_chance():
    y = np.repeat(np.arange(10), 20)
    check = check_confusion("val", _confusion(y, np.full(200, 3), 10))
    assert (check.accuracy, check.chance, check.predicted_classes) == (0.1, 0.1, 1)
    assert check.near_chance and check.one_class and check.failed
    assert check.message() == ("val split (200 samples): accuracy 0.100 is at chance (0.100 = "
                               "always answering the most frequent class, margin 0.050); "
                               "the model predicts one class for every sample")


def test_answering_the_majority_class_of_an_imbalanced_split_is_at_chance():
    y = np.array([0] * 90 + [1] * 10)  # 90% accuracy, and still nothing learned
    check = check_confusion("test", _confusion(y, np.zeros(100, int), 2))
    assert check.accuracy == 0.9 and check.chance == 0.9
    assert check.near_chance and check.one_class


def test_a_model_that_learned_passes():
    y = np.repeat(np.arange(10), 20)
    pred = y.copy()
    pred[::20] = (pred[::20] + 1) % 10  # 10 of 200 wrong: 95%
    check = check_confusion("test", _confusion(y, pred, 10))
    assert check.accuracy == 0.95 and not check.failed and check.message() == ""


def test_on_a_small_split_the_margin_is_two_binomial_standard_errors():
    y = np.repeat(np.arange(3), 4)  # 12 samples, chance 1/3
    pred = np.array([0, 0, 0, 1, 1, 1, 2, 2, 0, 0, 1, 2])  # 6 of 12 right
    check = check_confusion("test", _confusion(y, pred, 3))
    assert check.margin == pytest.approx(2 * np.sqrt((1 / 3) * (2 / 3) / 12), abs=1e-6)
    assert check.accuracy == 0.5 and check.near_chance and not check.one_class


def test_better_than_chance_but_one_class_is_still_flagged():
    # a split with one dominant class and a model that never answers anything else
    y = np.array([0] * 70 + [1] * 15 + [2] * 15)
    check = check_confusion("val", _confusion(y, np.zeros(100, int), 3))
    assert check.one_class and check.failed


def test_warnings_are_loud_and_strict_raises_one_line_with_exit_code_3(tmp_path):
    y = np.repeat(np.arange(4), 5)
    report = QualityReport([check_confusion("val", _confusion(y, np.zeros(20, int), 4)),
                            check_confusion("test", _confusion(y, y, 4))])
    assert not report.ok and len(report.warnings) == 1
    assert report.to_dict()["checks"][1]["failed"] is False
    stream = io.StringIO()
    print_warnings(report, stream)
    assert stream.getvalue().startswith("WARNING: val split (20 samples): accuracy 0.250 is at "
                                        "chance")
    with pytest.raises(TrainingAtChance) as info:
        raise_if_failed(report, tmp_path / "metrics.json")
    assert info.value.exit_code == 3
    assert str(info.value) == (f"{tmp_path / 'metrics.json'}: {report.warnings[0]} (--strict)")
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def noise_images(tmp_path_factory):
    """Two classes drawn from the same noise: nothing to learn, so any model is at chance."""
    from PIL import Image

    root = tmp_path_factory.mktemp("noise") / "data"
    rng = np.random.default_rng(0)
    for name in ("left", "right"):
        (root / name).mkdir(parents=True)
        for i in range(30):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                root / name / f"{i:03d}.png")
    return root


def test_cli_train_image_strict_exits_3_with_one_line_on_an_unlearnable_dataset(
        noise_images, tmp_path):
    from click.testing import CliRunner

    from edgepose.cli import main

    run = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "train", "image", str(noise_images), "--backbone", "mobilenet_v3_small",
        "--alpha", "0.75", "--input-size", "32", "--weights", "none", "--epochs", "1",
        "--batch-size", "16", "--augment", "none", "--seed", "1", "--no-deterministic",
        "--strict", "--output", str(run), "--quiet"])
    assert result.exit_code == 3, result.output
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and error[0].startswith(f"error: {run / 'metrics.json'}: val split ")
    assert error[0].endswith("(--strict)")
    assert "Traceback" not in result.output
    assert "WARNING: val split" in result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["quality"]["ok"] is False

    # the same run through `edgepose eval --strict`
    evaluated = CliRunner().invoke(main, ["eval", str(run), "--strict"])
    assert evaluated.exit_code == 3
    assert "WARNING: test split" in evaluated.output
