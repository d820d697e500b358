"""`bench --emulate --data` leaves out a run's own training images as `bench --data` does.

The emulated Pi scores the samples :func:`edgepose.arm.emulated.labelled_inputs` picks;
scored, the run's train/val images would flatter its accuracy with exit 0 (issue 11).
Same real run folder as tests/test_bench_heldout.py (a mislabelled training image
included); no emulator needed: the sample choice is host code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgepose.arm.emulated import labelled_inputs
from edgepose.errors import ConfigError, DataError
from tests.run_fixtures import copy_renamed, copy_split
from tests.test_bench_heldout import Run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    return Run(tmp_path_factory.mktemp("arm_heldout"))


def _seen(run: Run, data: Path, copies: str = "") -> str:
    return (f"model_fp32.tflite: 10 of 13 samples in {data} are images it was trained or "
            f"selected on (7 train, 3 val in {run.run / 'splits.json'}{copies}); left out: its "
            "accuracy is on the 3 held-out ones")


def test_the_runs_own_training_images_are_left_out_by_path(run):
    inputs, labels, described = labelled_inputs(run.model, data=run.dataset)
    assert inputs.shape == (3, 32, 32, 3) and inputs.dtype == np.uint8
    assert sorted(labels.tolist()) == [0, 1, 2]  # the three test images, one per class
    assert described == (f"all 3 samples from {run.dataset}; "
                         + _seen(run, run.dataset))


def test_copies_under_other_names_are_left_out_by_content(run, tmp_path):
    copy = copy_renamed(run.dataset, tmp_path / "copy")
    _, labels, described = labelled_inputs(run.model, data=copy)
    assert sorted(labels.tolist()) == [0, 1, 2]
    assert described.endswith(_seen(run, copy, ", 10 of them copies under another name"))


def test_only_training_images_is_the_same_one_line_refusal(run, tmp_path):
    only = copy_split(run.splits, "train", tmp_path / "only_train")
    with pytest.raises(DataError) as info:
        labelled_inputs(run.model, data=only)
    assert str(info.value) == (
        f"{only}: all 7 samples are images model_fp32.tflite was trained or selected on "
        f"(7 train in {run.run / 'splits.json'}): no held-out accuracy; use --split test or "
        "other data")


def test_fresh_images_are_all_used_without_a_word(run):
    inputs, labels, described = labelled_inputs(run.model, data=run.fresh)
    assert len(inputs) == 9 and np.bincount(labels).tolist() == [3, 3, 3]
    assert described == f"all 9 samples from {run.fresh}"


def test_a_model_outside_a_run_uses_everything(run, tmp_path):
    alone = tmp_path / "alone" / "model_fp32.tflite"
    alone.parent.mkdir()
    alone.write_bytes(run.model.read_bytes())
    _, labels, described = labelled_inputs(alone, data=run.dataset)
    assert np.bincount(labels).tolist() == [4, 4, 5]  # the mislabelled copy counts
    assert described == f"all 13 samples from {run.dataset}"


def _other_run(run: Run, root: Path, trained_on: list[str]) -> Path:
    """A second run folder over the same dataset whose train split also holds ``trained_on``."""
    from edgepose.data.splits import Sample, Splits

    other = root / "other_run"
    other.mkdir(parents=True)
    items = [Sample(s.path, s.label, "train" if s.path in trained_on else s.split)
             for s in run.splits.items]
    Splits("image", run.splits.root, run.splits.classes, items).save(other / "splits.json")
    model = other / "model_fp32.tflite"
    model.write_bytes(run.model.read_bytes())
    return model


def test_every_models_run_counts_when_several_are_emulated(run, tmp_path):
    other = _other_run(run, tmp_path, ["dark/3.png"])  # one of the three test images
    _, labels, described = labelled_inputs(run.model, data=run.dataset, also=[other])
    assert len(labels) == 2  # dark/3.png was the other model's training image
    assert described.startswith(f"all 2 samples from {run.dataset}; " + _seen(run, run.dataset))
    assert described.endswith(f"model_fp32.tflite: 1 of 3 samples in {run.dataset} are "
                              "images it was trained or selected on (1 train in "
                              f"{other.parent / 'splits.json'}); left out: its accuracy is on "
                              "the 2 held-out ones")


def test_data_every_emulated_model_trained_on_is_refused(run, tmp_path):
    other = _other_run(run, tmp_path, [f"{name}/3.png" for name in ("dark", "mid", "bright")])
    with pytest.raises(DataError) as info:
        labelled_inputs(run.model, data=run.dataset, also=[other])
    assert "all 3 samples are images model_fp32.tflite was trained or selected on" \
           in str(info.value)


def test_a_split_of_one_run_is_not_used_for_another_runs_model(run, tmp_path):
    other = _other_run(run, tmp_path, [])
    with pytest.raises(ConfigError) as info:
        labelled_inputs(run.model, split="test", also=[other])
    runs = ", ".join(sorted(str(p.resolve()) for p in (run.run, other.parent)))
    assert str(info.value) == (f"--split test with models of different runs ({runs}): each "
                               "run has its own test split; emulate one run's models at a time")
    same_run = run.run / "model_copy.tflite"
    same_run.write_bytes(run.model.read_bytes())
    try:  # models of one run pass the check and go on to read that run (no config.json here)
        with pytest.raises(DataError, match="not an edgepose run directory"):
            labelled_inputs(run.model, split="test", also=[same_run])
    finally:
        same_run.unlink()
