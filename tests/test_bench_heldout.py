"""`bench --data` never reports a run's own training images as held-out accuracy.

A real run folder: splits.json listing train / val / test images and a real tiny
.tflite (hand-set weights, labels and the 0..1 contract as TFLite metadata) whose
right answer on every image is known. One training image is deliberately
mislabelled: counted, it would change the accuracy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from edgepose.bench.harness import run_bench
from edgepose.cli import main
from edgepose.data.splits import Sample, Splits
from edgepose.errors import DataError
from edgepose.runtime.input_contract import InputContract
from tests import contract_models as cm
from tests.run_fixtures import copy_renamed, copy_split

SPLIT_OF = {0: "train", 1: "train", 2: "val", 3: "test"}


class Run:
    def __init__(self, root: Path):
        from edgepose.converters.metadata import add_metadata

        self.dataset = cm.write_brightness_images(root / "dataset", per_class=4)
        # a dark picture filed as "bright", in train: wrong if it were scored
        Image.open(self.dataset / "dark" / "1.png").save(self.dataset / "bright" / "9.png")
        items = [Sample(f"{name}/{i}.png", label, SPLIT_OF[i])
                 for label, name in enumerate(cm.BRIGHTNESS) for i in range(4)]
        items.append(Sample("bright/9.png", 2, "train"))
        self.run = root / "run"
        self.run.mkdir()
        self.splits = Splits("image", str(self.dataset), list(cm.BRIGHTNESS), items)
        self.splits.save(self.run / "splits.json")
        model = cm.to_tflite(cm.brightness_model("0..1"), root / "plain.tflite")
        self.model = self.run / "model_fp32.tflite"
        self.model.write_bytes(add_metadata(model.read_bytes(), "unit", cm.BRIGHTNESS,
                                            InputContract.from_range(0.0, 1.0),
                                            (cm.SIZE, cm.SIZE)))
        self.fresh = cm.write_brightness_images(root / "fresh", per_class=3, seed=7)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    return Run(tmp_path_factory.mktemp("heldout"))


def _bench(run: Run, data: Path):
    return run_bench([run.model], data=data, runs=2, warmup=0, reference="none")


def test_the_runs_own_training_images_are_left_out_by_path(run):
    result = _bench(run, run.dataset)
    assert result.rows[0].accuracy == 1.0 and result.settings.samples == 3
    assert (f"model_fp32.tflite: 10 of 13 samples in {run.dataset} are images it was trained "
            f"or selected on (7 train, 3 val in {run.run / 'splits.json'}); left out: its "
            "accuracy is on the 3 held-out ones") in result.warnings


def test_copies_under_other_names_are_left_out_by_content(run, tmp_path):
    copy = copy_renamed(run.dataset, tmp_path / "copy")
    result = _bench(run, copy)
    assert result.rows[0].accuracy == 1.0 and result.settings.samples == 3
    assert (f"model_fp32.tflite: 10 of 13 samples in {copy} are images it was trained or "
            f"selected on (7 train, 3 val in {run.run / 'splits.json'}, 10 of them copies under "
            "another name); left out: its accuracy is on the 3 held-out ones") in result.warnings


def test_only_training_images_is_a_one_line_refusal(run, tmp_path):
    only = copy_split(run.splits, "train", tmp_path / "only_train")
    with pytest.raises(DataError) as info:
        _bench(run, only)
    assert str(info.value.path) == str(only)
    assert info.value.message == (
        f"all 7 samples are images model_fp32.tflite was trained or selected on (7 train in "
        f"{run.run / 'splits.json'}): no held-out accuracy; use --split test or other data")


def test_fresh_images_are_all_scored_without_a_word(run):
    result = _bench(run, run.fresh)
    assert result.rows[0].accuracy == 1.0 and result.settings.samples == 9
    assert not [w for w in result.warnings if "trained or selected on" in w]


def test_a_model_outside_a_run_scores_everything(run, tmp_path):
    alone = tmp_path / "alone" / "model_fp32.tflite"
    alone.parent.mkdir()
    alone.write_bytes(run.model.read_bytes())
    result = run_bench([alone], data=run.dataset, runs=2, warmup=0, reference="none")
    assert result.settings.samples == 13
    assert result.rows[0].accuracy == pytest.approx(12 / 13)  # the mislabelled one counts


def test_bench_cli_reports_the_left_out_images(run):
    result = CliRunner().invoke(main, ["bench", str(run.model), "--data", str(run.dataset),
                                       "--runs", "2", "--warmup", "0", "--reference", "none",
                                       "--print-json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["result"]
    assert report["rows"][0]["accuracy"] == 1.0 and report["settings"]["samples"] == 3
    assert any(w.startswith("model_fp32.tflite: 10 of 13 samples in ")
               for w in report["warnings"])


def test_keypoint_files_are_matched_too(tmp_path):
    from edgepose.bench.heldout import held_out

    data = tmp_path / "poses"
    (data / "up").mkdir(parents=True)
    files = []
    for i in range(4):
        path = data / "up" / f"{i}.json"
        path.write_text(json.dumps({"keypoints": [0.1 * i] * 34, "label": 0}))
        files.append(path)
    run = tmp_path / "run"
    run.mkdir()
    Splits("keypoints", str(data), ["up"], [Sample("up/0.json", 0, "train"),
                                            Sample("up/1.json", 0, "val"),
                                            Sample("up/2.json", 0, "test")]).save(
        run / "splits.json")
    moved = tmp_path / "elsewhere" / "up"
    moved.mkdir(parents=True)
    shutil.copyfile(files[0], moved / "copy.json")  # the train file, renamed
    split = held_out([*files, moved / "copy.json"], run / "model_int8.tflite", str(data))
    assert split.keep == [2, 3]
    assert (split.seen, split.by_content) == ({"train": 2, "val": 1}, 1)
