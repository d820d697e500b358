"""The evaluation plots as a reader sees them: structure measured with matplotlib's renderer.

Real inputs: scikit-learn's handwritten digits and a real (deliberately weak,
so that it makes errors) logistic-regression classifier's probabilities. Each
plot function is run as the trainer runs it; the figure is caught just before
it is saved (``_save_figure``) and its artists are inspected: tick-label boxes,
title colours and order, legend entries, line colours.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from matplotlib.colors import to_hex

from edgepose.train import evaluation
from edgepose.train.evaluation import (
    evaluate_predictions,
    plot_confusion_matrix,
    plot_prediction_grid,
    plot_roc_pr,
    prediction_grid_order,
)
from tests.plot_checks import boxes, measure_drawn, no_two_overlap

LONG_NAMES = ["stance_correct", "stance_incorrect", "execution_correct", "execution_incorrect"]


@pytest.fixture(scope="module")
def digits4():
    """Images, labels and real classifier probabilities for digits 0-3 (some wrong)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    digits = load_digits()
    keep = np.flatnonzero(digits.target < 4)
    order = np.random.default_rng(0).permutation(keep)
    train, test = order[:100], order[100:]
    model = LogisticRegression(C=0.0005, max_iter=200).fit(digits.data[train],
                                                           digits.target[train])
    images = np.repeat((digits.images[test] * 15.9).astype(np.uint8)[..., None], 3, axis=-1)
    return images, digits.target[test], model.predict_proba(digits.data[test])


@pytest.fixture
def saved(monkeypatch):
    """Catch each figure as the plot function saves it (then save it as usual)."""
    figures = []
    original = evaluation._save_figure

    def keep(fig, path):
        measure_drawn(fig)  # now: saving closes the figure and drops its renderer
        figures.append(fig)
        return original(fig, path)

    monkeypatch.setattr(evaluation, "_save_figure", keep)
    return figures


@pytest.mark.parametrize("names", [LONG_NAMES, ["a", "b", "c", "d"],
                                   [f"class_name_{i}" for i in range(4)]])
def test_confusion_matrix_tick_labels_never_overlap(digits4, saved, tmp_path, names):
    _, y, probabilities = digits4
    plot_confusion_matrix(evaluate_predictions(y, probabilities, names), tmp_path / "cm.png")
    (fig,) = saved
    ax = fig.axes[0]
    x_labels = boxes(fig, ax.get_xticklabels())
    assert len(x_labels) == 4
    assert no_two_overlap(x_labels)
    assert no_two_overlap(boxes(fig, ax.get_yticklabels()))
    # The axis title "predicted" sits below the rotated labels, not on them.
    (below,) = boxes(fig, [ax.xaxis.label])
    assert all(not below.overlaps(box) for box in x_labels)


def test_short_class_names_stay_flat_and_long_ones_turn(digits4, saved, tmp_path):
    _, y, probabilities = digits4
    for names in (["a", "b", "c", "d"], LONG_NAMES):
        plot_confusion_matrix(evaluate_predictions(y, probabilities, names), tmp_path / "cm.png")
    flat, turned = ({t.get_rotation() for t in fig.axes[0].get_xticklabels()} for fig in saved)
    assert flat == {0.0}
    assert turned in ({45.0}, {90.0})


def test_confusion_matrix_cells_show_the_counts(digits4, saved, tmp_path):
    _, y, probabilities = digits4
    result = evaluate_predictions(y, probabilities, LONG_NAMES)
    plot_confusion_matrix(result, tmp_path / "cm.png")
    cells = [int(t.get_text()) for t in saved[0].axes[0].texts]
    assert cells == [v for row in result.confusion_matrix for v in row]


def test_grid_order_puts_every_error_first_most_confident_first(digits4):
    _, y, probabilities = digits4
    order = prediction_grid_order(y, probabilities, max_images=len(y))
    wrong = probabilities.argmax(1) != y
    assert 0 < wrong.sum() < len(y)
    assert wrong[order].tolist() == sorted(wrong.tolist(), reverse=True)
    confidence = probabilities.max(1)[order[: wrong.sum()]]
    assert np.all(np.diff(confidence) <= 0)
    assert sorted(order.tolist()) == list(range(len(y)))


@pytest.mark.parametrize("take_errors", [0, 3, 40])
def test_prediction_grid_shows_the_errors_first_in_red(digits4, saved, tmp_path, take_errors):
    images, y, probabilities = digits4
    wrong = np.flatnonzero(probabilities.argmax(1) != y)
    assert len(wrong) >= 40
    subset = np.concatenate([wrong[:take_errors],
                             np.flatnonzero(probabilities.argmax(1) == y)[:40]])
    plot_prediction_grid(images[subset], y[subset], probabilities[subset], LONG_NAMES,
                         tmp_path / "grid.png", max_images=25)
    (fig,) = saved
    titles = [ax.title for ax in fig.axes if ax.title.get_text()]
    assert len(titles) == 25
    colours = [to_hex(t.get_color()) for t in titles]
    shown_errors = min(take_errors, 25)
    assert colours == [to_hex("red")] * shown_errors + [to_hex("green")] * (25 - shown_errors)
    for title in titles:
        predicted, true = re.match(r"(\w+) \([\d.]+\)\ntrue: (\w+)", title.get_text()).groups()
        assert (predicted != true) == (to_hex(title.get_color()) == to_hex("red"))
    assert fig._suptitle.get_text().startswith(
        f"{take_errors} of {len(subset)} wrong" if take_errors else f"all {len(subset)} right")


def _legend_aucs(ax) -> list[float]:
    return [float(re.search(r"AUC ([\d.]+)", t.get_text()).group(1))
            for t in ax.get_legend().get_texts() if "AUC" in t.get_text()]


def test_roc_curves_give_the_auc_the_report_gives(digits4, saved, tmp_path):
    _, y, probabilities = digits4
    result = evaluate_predictions(y, probabilities, LONG_NAMES)
    plot_roc_pr(y, probabilities, LONG_NAMES, tmp_path / "roc_pr.png")
    roc_ax, pr_ax = saved[0].axes
    aucs = _legend_aucs(roc_ax)
    assert len(aucs) == 4  # one-vs-rest, one curve per class
    assert np.mean(aucs) == pytest.approx(result.roc_auc, abs=2e-3)
    assert f"macro AUC {result.roc_auc:.3f}" in roc_ax.get_title()
    assert len([t for t in pr_ax.get_legend().get_texts() if "AP" in t.get_text()]) == 4
    curve_colours = [to_hex(line.get_color()) for line in roc_ax.get_lines()[:4]]
    assert len(set(curve_colours)) == 4


def test_binary_roc_is_one_curve_for_the_second_class(digits4, saved, tmp_path):
    _, y, probabilities = digits4
    y2 = (y >= 2).astype(int)
    p2 = np.stack([probabilities[:, :2].sum(1), probabilities[:, 2:].sum(1)], axis=1)
    result = evaluate_predictions(y2, p2, ["correct", "incorrect"])
    plot_roc_pr(y2, p2, ["correct", "incorrect"], tmp_path / "roc_pr.png")
    roc_ax, _ = saved[0].axes
    assert _legend_aucs(roc_ax) == [pytest.approx(result.roc_auc, abs=5e-4)]
    assert "positive class incorrect" in roc_ax.get_title()


def test_every_plot_is_a_png_inside_its_figure(digits4, saved, tmp_path):
    images, y, probabilities = digits4
    result = evaluate_predictions(y, probabilities, LONG_NAMES)
    paths = [plot_confusion_matrix(result, tmp_path / "cm.png"),
             plot_prediction_grid(images, y, probabilities, LONG_NAMES, tmp_path / "grid.png"),
             plot_roc_pr(y, probabilities, LONG_NAMES, tmp_path / "roc.png")]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for fig in saved:
        # Saved with bbox_inches="tight": every drawn label lies inside the saved area.
        tight = fig.tight.padded(1)
        texts = [fig._suptitle] if fig._suptitle else []
        for ax in fig.axes:
            texts.append(ax.title)
            if ax.axison:  # tick labels outside the view limits are not drawn
                (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
                texts += [ax.xaxis.label, ax.yaxis.label]
                texts += [t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1]
                texts += [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1]
        drawn = boxes(fig, texts)
        assert drawn
        for box in drawn:
            assert tight.x0 <= box.x0 and box.x1 <= tight.x1
            assert tight.y0 <= box.y0 and box.y1 <= tight.y1


@pytest.fixture(scope="module")
def dense_model():
    """A tiny real Keras classifier on the 64 digit pixels (4 classes), trained briefly."""
    from sklearn.datasets import load_digits

    from edgepose.quiet import import_tensorflow

    import_tensorflow()
    import keras

    digits = load_digits()
    keep = digits.target < 4
    x, y = digits.data[keep].astype(np.float32) / 16.0, digits.target[keep]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(4, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:200], y[:200], epochs=3, verbose=0)
    return model, x[200:], y[200:]


def test_evaluation_writes_the_roc_pr_curves_behind_its_auc(dense_model, tmp_path):
    model, x, y = dense_model
    result = evaluation.evaluate_model(model, x, y, LONG_NAMES, tmp_path, images=False)
    assert result.roc_auc is not None
    assert result.plots["roc_pr"] == "roc_pr.png"
    assert (tmp_path / "roc_pr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["plots"]["roc_pr"] == "roc_pr.png"


def test_no_roc_pr_when_a_class_is_missing_from_the_split(dense_model, tmp_path):
    model, x, y = dense_model
    keep = y != 3  # no AUC without every class: no curves either
    result = evaluation.evaluate_model(model, x[keep], y[keep], LONG_NAMES, tmp_path,
                                       images=False, split="val")
    assert result.roc_auc is None
    assert "roc_pr" not in result.plots
    assert not (tmp_path / "roc_pr_val.png").exists()


def test_training_curves_name_each_new_stage(dense_model, saved, tmp_path):
    model, x, y = dense_model
    rows = []
    for stage in ("head", "finetune"):
        history = model.fit(x, y, validation_split=0.25, epochs=2, verbose=0).history
        for i in range(2):
            rows.append({"stage": stage, "epoch": len(rows) + 1,
                         **{key: values[i] for key, values in history.items()}})
    evaluation.plot_training_curves(rows, tmp_path / "curves.png")
    (fig,) = saved
    for ax in fig.axes:
        assert [t.get_text().strip() for t in ax.texts] == ["finetune"]
        assert [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"] \
            == [2.5]
        assert {t.get_text() for t in ax.get_legend().get_texts()} <= {
            "loss", "val_loss", "accuracy", "val_accuracy"}


def test_prediction_grid_title_when_nothing_is_wrong(digits4, saved, tmp_path):
    images, y, probabilities = digits4
    right = np.flatnonzero(probabilities.argmax(1) == y)[:9]
    plot_prediction_grid(images[right], y[right], probabilities[right], LONG_NAMES,
                         tmp_path / "grid.png")
    (fig,) = saved
    assert fig._suptitle.get_text() == "all 9 right; each: predicted (score) / true"
