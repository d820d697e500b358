"""benchmarks/scratch_baselines.py: cross-validated baselines and the paired comparison.

The backbone half of the benchmark is the real trainer (covered by test_train_image);
here: the folds, the baselines' inner search, McNemar's test and the report text, on
the real bundled digits (a few per class) and through the script's command line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import scratch_baselines as sb  # noqa: E402


@pytest.mark.parametrize(("a", "b", "only_a", "only_b", "p"), [
    # 6 discordant pairs all one way: two-sided binomial 2 * (1/2)^6
    ([1] * 6 + [1] * 4, [0] * 6 + [1] * 4, 6, 0, 0.0312),
    ([1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], 3, 3, 1.0),  # balanced: no evidence
    ([1, 0, 1, 0], [1, 0, 1, 0], 0, 0, 1.0),  # identical predictions
    # 1 vs 9: 2 * P(X <= 1), X ~ Bin(10, 1/2) = 2 * 11 / 1024
    ([1] + [0] * 9 + [1] * 5, [0] + [1] * 9 + [1] * 5, 1, 9, 0.0215),
])
def test_mcnemar_counts_the_discordant_pairs_and_gives_the_exact_p_value(a, b, only_a,
                                                                        only_b, p):
    got = sb.mcnemar(np.array(a, dtype=bool), np.array(b, dtype=bool))
    assert got[:2] == (only_a, only_b)
    assert got[2] == pytest.approx(p, abs=1e-4)


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> tuple[list[Path], np.ndarray]:
    """The real bundled digits, 12 per class, in the benchmark's order."""
    from edgepose.data.digits import write_digits

    files, y = sb.digit_files(write_digits(tmp_path_factory.mktemp("digits") / "d", size=16))
    keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:12] for c in range(10)]))
    return [files[i] for i in keep], y[keep]


def test_digit_files_are_ordered_by_digit_then_index_with_their_labels(digits):
    files, y = digits
    assert [int(f.parent.name) for f in files] == y.tolist()
    assert y.tolist() == sorted(y.tolist()) and np.bincount(y).tolist() == [12] * 10
    indices = [int(f.stem) for f in files if f.parent.name == "3"]
    assert indices == sorted(indices)


def test_cross_validated_baselines_predict_every_image_exactly_once(digits):
    from sklearn.model_selection import StratifiedKFold

    files, y = digits
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    rows = sb.run_baselines(sb.pixels(files), y, folds, seed=0)
    assert [r.name for r in rows] == ["logistic_regression", "k_nearest_neighbours"]
    for row in rows:
        predictions = np.array(row.predictions)
        assert len(predictions) == len(y) and set(predictions) <= set(range(10))
        assert row.correct == int(np.sum(predictions == y))
        assert row.accuracy == round(row.correct / len(y), 4)
        # each fold's accuracy is on that fold's held-out images only
        for (_, test_idx), accuracy in zip(folds, row.fold_accuracy, strict=True):
            assert accuracy == round(float(np.mean(predictions[test_idx] == y[test_idx])), 4)
        assert row.settings.count("chosen per fold") == 1
        assert row.accuracy > 0.5  # real digits: far above the 0.1 of guessing


def _report(backbone_right: int, knn_right: int, n: int = 20) -> dict:
    y = [i % 10 for i in range(n)]

    def row(name, right, kind):
        predictions = [v if i < right else (v + 1) % 10 for i, v in enumerate(y)]
        return sb.ModelRow(name, "", [round(right / n, 4)], round(right / n, 4), right,
                           predictions, kind, [1.0])

    report = sb.ScratchReport(
        machine={}, dataset="", images=n, folds=1, command="benchmarks/scratch_baselines.py",
        settings={"seed": 0, "input_size": 64, "digits_size": 64, "epochs": 20, "lr": 0.001,
                  "lr_schedule": "cosine", "augment": "shift", "batch_size": 32,
                  "val_split": 0.1, "baseline_pixels": "16x16 grey"},
        labels=y, fold_sizes=[n],
        models=[row("k_nearest_neighbours", knn_right, "baseline"),
                row("mobilenet_v3_small", backbone_right, "backbone")])
    report.comparisons = sb.compare(report)
    return json.loads(json.dumps(sb.asdict(report)))


def test_a_backbone_that_does_not_beat_a_baseline_is_said_plainly():
    text = sb.markdown(_report(backbone_right=17, knn_right=18), "machine")
    assert "| mobilenet_v3_small | 0.8500 | 17 | 0.8500 | **no** | 1 |" in text
    assert ("- mobilenet_v3_small does not beat k_nearest_neighbours: 0 images only it gets "
            "right, 1 only the baseline gets right.") in text


def test_a_tie_is_not_a_win():
    report = _report(backbone_right=18, knn_right=18)
    assert report["comparisons"][0]["beats"] is False
    assert "| mobilenet_v3_small | k_nearest_neighbours | 0 | 0 | 1.0000 | **no** |" in \
        sb.markdown(report, "m")


def test_a_backbone_that_beats_every_baseline_is_a_yes_with_its_paired_counts():
    text = sb.markdown(_report(backbone_right=20, knn_right=14), "machine")
    assert "| mobilenet_v3_small | 1.0000 | 20 | 1.0000 | yes | 1 |" in text
    # 6 images only the backbone gets right, none the other way: p = 2 / 2^6
    assert "| mobilenet_v3_small | k_nearest_neighbours | 6 | 0 | 0.0312 | yes |" in text
    assert "does not beat" not in text


def test_the_script_records_the_baselines_and_its_own_command_line(tmp_path):
    args = ["--backbones", "", "--folds", "3", "--limit", "9", "--out", str(tmp_path)]
    result = subprocess.run([sys.executable, str(BENCHMARKS / "scratch_baselines.py"), *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr  # no backbone: nothing beat the baselines
    record = json.loads((tmp_path / "scratch_baselines.json").read_text())
    assert (record["images"], record["folds"], record["fold_sizes"]) == (90, 3, [30, 30, 30])
    assert [m["name"] for m in record["models"]] == ["logistic_regression",
                                                     "k_nearest_neighbours"]
    text = (tmp_path / "scratch_baselines.md").read_text()
    assert "Stratified 3-fold cross-validation over all 90 bundled digits" in text
    assert "Rerun: `benchmarks/scratch_baselines.py --backbones '' --folds 3 --limit 9" in text
    # --append keeps the record (seeded folds: the same predictions) instead of refitting
    again = subprocess.run([sys.executable, str(BENCHMARKS / "scratch_baselines.py"), *args,
                            "--append"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 1, again.stderr
    kept = json.loads((tmp_path / "scratch_baselines.json").read_text())
    assert kept["models"] == record["models"]
    assert kept["command"].count("&&") == 1


def test_a_fold_where_the_backbone_is_below_a_baseline_is_named():
    report = _report(backbone_right=20, knn_right=14)
    report["folds"] = 3
    report["models"][0]["fold_accuracy"] = [0.7, 0.95, 0.5]  # k-NN
    report["models"][1]["fold_accuracy"] = [1.0, 0.9, 0.9]  # the backbone
    text = sb.markdown(report, "machine")
    assert ("- mobilenet_v3_small is below k_nearest_neighbours on fold(s) 1 of 3 (pooled, "
            "it is above).") in text


def test_a_win_the_paired_test_cannot_tell_from_chance_says_so():
    text = sb.markdown(_report(backbone_right=20, knn_right=18), "machine")
    # 2 images only the backbone gets right: p = 2 / 2^2 = 0.5
    assert ("| mobilenet_v3_small | 1.0000 | 20 | 1.0000 | yes, not significantly vs "
            "k_nearest_neighbours (p 0.5000) | 1 |") in text
