"""benchmarks/int8_drift.py: the float sets of --curve and their table (no conversion)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from int8_drift import float_curve, markdown  # noqa: E402

# execution order of a small graph: normalisation, 4 weighted ops, a residual ADD,
# a SOFTMAX the debugger does not report (so it is never denylisted)
ORDER = [("norm", "MUL"), ("stem", "CONV_2D"), ("dw", "DEPTHWISE_CONV_2D"), ("add", "ADD"),
         ("project", "CONV_2D"), ("logits", "FULLY_CONNECTED"), ("probs", "SOFTMAX")]
QUANTIZABLE = ["norm", "stem", "dw", "add", "project", "logits"]


def test_curve_keeps_the_first_k_weighted_ops_and_the_ops_after_them_float():
    sets = dict(float_curve(ORDER, QUANTIZABLE))
    assert sets["first 1 of 4 weighted"] == ["norm", "stem"]
    assert sets["first 2 of 4 weighted"] == ["norm", "stem", "dw", "add"]
    assert sets["first 4 of 4 weighted"] == QUANTIZABLE
    assert list(sets) == [f"first {k} of 4 weighted" for k in (1, 2, 3, 4)]  # no "last"


def test_curve_steps_by_six_after_eight_and_adds_the_last_ops():
    order = [(f"c{i}", "CONV_2D") for i in range(30)]
    sets = float_curve(order, [name for name, _ in order])
    labels = [label for label, _ in sets]
    assert labels == [f"first {k} of 30 weighted" for k in (1, 2, 3, 4, 5, 6, 7, 8, 14, 20,
                                                              26, 30)] + \
        ["last 5 of 30 weighted", "last 20 of 30 weighted"]
    assert dict(sets)["last 5 of 30 weighted"] == [f"c{i}" for i in range(25, 30)]


def test_markdown_prints_the_curve_rows_with_their_figures():
    split = {"net_drop": 1.5, "lost": 2.25, "disagree": 3.0}
    run = {"run": "cell", "keras_val_accuracy": 0.9, "keras_test_accuracy": 0.8,
           "val_samples": 10, "test_samples": 12, "rows": [], "profile": [],
           "curve": [{"float_ops": "first 1 of 4 weighted", "count": 2, "val": split,
                      "test": {"net_drop": 0.5, "lost": 1.0, "disagree": 2.0}}]}
    text = markdown({"machine": "m", "date": "d", "commands": ["c"], "runs": [run]})
    assert "| first 1 of 4 weighted | 2 | 2.25 | 0.50 | 1.00 |" in text.splitlines()
