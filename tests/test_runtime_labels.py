"""Class names are never silently replaced: ``--labels`` against what the model states,
and a ``labels.txt`` beside a model that states none (the TFLite examples' convention).

Found by a new user: ``predict --labels reversed.txt`` printed "6 0.921" for an image of a 3,
exit 0, although the manifest lists the digits in order; a ``labels.txt`` beside a bare
``.tflite`` was ignored without a word.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.errors import ModelError
from edgepose.runtime.classifier import Classifier
from tests.tflite_models import CLASSES, write_manifest


def _labels(path: Path, names: list[str]) -> Path:
    path.write_text("\n".join(names) + "\n")
    return path


def _bare(tiny_run, folder: Path) -> Path:
    """The tiny fp32 model alone: no manifest, no labels packed in."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(tiny_run.fp32, folder / "model.tflite"))


def test_labels_that_reorder_the_models_own_are_refused(tiny_run, tmp_path):
    reordered = _labels(tmp_path / "reordered.txt", list(reversed(CLASSES)))
    with pytest.raises(ModelError) as info:
        Classifier.from_file(tiny_run.fp32, labels_path=reordered)
    assert info.value.message == (
        f"--labels {reordered} (two, one, zero) disagrees with the labels in "
        f"{tiny_run.fp32.with_suffix('.json')} (zero, one, two): drop --labels to use the "
        "model's own")


def test_labels_with_other_names_are_refused_too(tiny_run, tmp_path):
    renamed = _labels(tmp_path / "renamed.txt", ["cat", "dog", "bird"])
    with pytest.raises(ModelError, match="disagrees with the labels in"):
        Classifier.from_file(tiny_run.fp32, labels_path=renamed)


def test_labels_equal_to_the_models_own_are_fine(tiny_run, tmp_path):
    same = _labels(tmp_path / "same.txt", CLASSES)
    classifier = Classifier.from_file(tiny_run.fp32, labels_path=same)
    assert classifier.labels == CLASSES and classifier.labels_source == str(same)


def test_labels_may_name_a_model_that_states_only_indices(tiny_run, tmp_path):
    model = _bare(tiny_run, tmp_path / "indexed")
    write_manifest(model, "image", ["0", "1", "2"], "fp32")
    names = _labels(tmp_path / "names.txt", CLASSES)
    assert Classifier.from_file(model, labels_path=names).labels == CLASSES


def test_a_labels_file_beside_a_bare_model_is_used_and_named(tiny_run, tmp_path):
    model = _bare(tiny_run, tmp_path / "bare")
    beside = _labels(model.parent / "labels.txt", CLASSES)
    classifier = Classifier.from_file(model, strict=False)
    assert classifier.labels == CLASSES and classifier.labels_source == str(beside)


def test_a_labels_file_beside_with_the_wrong_count_is_one_line(tiny_run, tmp_path):
    model = _bare(tiny_run, tmp_path / "short")
    beside = _labels(model.parent / "labels.txt", ["a", "b"])
    with pytest.raises(ModelError) as info:
        Classifier.from_file(model, strict=False)
    assert info.value.message == f"model has 3 outputs but 2 labels (from {beside})"


def test_without_any_labels_the_classes_are_indices(tiny_run, tmp_path):
    model = _bare(tiny_run, tmp_path / "none")
    classifier = Classifier.from_file(model, strict=False)
    assert classifier.labels == ["0", "1", "2"] and classifier.labels_source == "index"


def test_predict_refuses_disagreeing_labels_in_one_line(tiny_run, tmp_path):
    reordered = _labels(tmp_path / "reordered.txt", list(reversed(CLASSES)))
    image = next(tiny_run.data.rglob("*.png"))
    result = CliRunner().invoke(main, ["predict", str(tiny_run.fp32), str(image),
                                       "--labels", str(reordered)])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "disagrees with the labels in" in errors[0]
    assert "Traceback" not in result.output
