"""Which layers lose the most to int8: TensorFlow's QuantizationDebugger, per layer.

The debugger compares each quantized op with the same op run in float on the
same (dequantized) inputs, so an error is the layer's own, not accumulated.
It needs float input/output, so it debugs the float-I/O variant of the int8
model; the ranking is the same for int8 I/O. ``rmse/scale`` is the RMS error in
units of the output's quantization step: ~0.29 is ideal rounding, above ~1 the
layer is a candidate to keep in float.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepose.converters.calibration import CalibrationSet
from edgepose.converters.modes import MODES
from edgepose.converters.tflite import explain_failure, make_converter
from edgepose.errors import ConversionError
from edgepose.fileio import atomic_path
from edgepose.quiet import captured_output


@dataclass
class LayerError:
    """Quantization error of one op's output tensor."""

    tensor: str  # output tensor name (what a denylist names)
    op: str
    rmse_over_scale: float
    cosine: float  # cosine similarity of float vs dequantized int8 outputs (1 = same)
    mean_abs_error: float
    scale: float


def _cosine(float_tensors, quant_tensors, scale, zero_point) -> float:
    f = np.concatenate([np.ravel(t) for t in float_tensors]).astype(np.float64)
    q = (np.concatenate([np.ravel(t) for t in quant_tensors]).astype(np.float64)
         - zero_point) * scale
    denom = np.linalg.norm(f) * np.linalg.norm(q)
    return float(np.dot(f, q) / denom) if denom > 0 else 1.0


def layer_errors(saved_model_dir: str | Path, calibration: CalibrationSet,
                 compat: str | None = None, samples: int = 50,
                 source: str | Path | None = None,
                 float_nodes: Sequence[str] = ()) -> list[LayerError]:
    """Per-layer int8 error, worst first (by rmse/scale).

    ``float_nodes``: output tensor names kept float in the int8 being debugged (the
    ops ``--target``'s choice keeps float, :mod:`edgepose.converters.target`); the
    debugger quantizes the same way (its ``denylisted_nodes``), so those ops are not
    ranked and the others' errors are those of that int8.

    Raises:
        ConversionError: the QuantizationDebugger cannot quantize the model (its log turned into one
            line).
    """
    from edgepose.keras_quiet import tf

    converter = make_converter(saved_model_dir, MODES["int8"], calibration, "float", compat)
    options = tf.lite.experimental.QuantizationDebugOptions(
        layer_debug_metrics={"mean_abs_error": lambda diff: float(np.mean(np.abs(diff)))},
        layer_direct_compare_metrics={"cosine": _cosine},
        denylisted_nodes=list(float_nodes) or None)
    with captured_output() as log:
        try:
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=calibration.representative_dataset(samples),
                debug_options=options)
            debugger.run()
            buffer = io.StringIO()
            debugger.layer_statistics_dump(buffer)
            error = None
        except Exception as exc:
            error = exc
    if error is not None:
        raise ConversionError(explain_failure(f"{error}\n{log.text}", "quantization debugger"),
                              source or saved_model_dir) from None
    rows = []
    for row in csv.DictReader(io.StringIO(buffer.getvalue())):
        scale = float(row["scale"])
        mse = float(row["mean_squared_error"])
        rows.append(LayerError(tensor=row["tensor_name"], op=row["op_name"],
                               rmse_over_scale=float(np.sqrt(mse) / scale) if scale else 0.0,
                               cosine=float(row["cosine"]),
                               mean_abs_error=float(row["mean_abs_error"]), scale=scale))
    rows.sort(key=lambda r: r.rmse_over_scale, reverse=True)
    return rows


# rmse/scale above this: the layer is a candidate to keep in float (module docstring).
KEEP_FLOAT_THRESHOLD = 1.0
IDEAL_ROUNDING = 0.29  # RMS of a uniform rounding error, in steps: 1/sqrt(12)


def plot_layer_errors(errors: list[LayerError], path: str | Path, top: int = 25) -> Path:
    """Bar chart of the ``top`` worst layers (rmse/scale, cosine similarity beside) as a PNG.

    Bars above :data:`KEEP_FLOAT_THRESHOLD` are red (candidates to keep in
    float), the others blue; the dotted line is ideal rounding (1/sqrt(12)).
    Each layer is named by its op and the first of its fused tensor names
    (:func:`layer_label`). The x range leaves room for the cosine labels and the
    figure is saved with a tight bounding box, so no label is cut.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    worst = errors[:top][::-1]
    fig, ax = plt.subplots(figsize=(9, 0.32 * max(len(worst), 4) + 1.6))
    values = [e.rmse_over_scale for e in worst]
    colours = ["#c0504d" if v > KEEP_FLOAT_THRESHOLD else "#4f81bd" for v in values]
    bars = ax.barh(range(len(worst)), values, color=colours)
    for bar, e in zip(bars, worst, strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" cos {e.cosine:.3f}",
                va="center", fontsize=7)
    ax.set_yticks(range(len(worst)), [layer_label(e) for e in worst], fontsize=7)
    # Room on the right for the longest bar's cosine label (about 15% of the range).
    ax.set_xlim(0, max([*values, IDEAL_ROUNDING, 0.1]) * 1.18)
    ax.axvline(IDEAL_ROUNDING, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("RMSE / quantization step (dotted: 0.29 = ideal rounding)")
    ax.set_title(f"int8 per-layer quantization error, worst first ({len(worst)} of "
                 f"{len(errors)} layers)", fontsize=10)
    ax.legend(handles=[Patch(color="#c0504d", label=f"> {KEEP_FLOAT_THRESHOLD:g}: keep in float?"),
                       Patch(color="#4f81bd", label=f"<= {KEEP_FLOAT_THRESHOLD:g}")],
              fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def layer_label(error: LayerError, width: int = 48) -> str:
    """``"CONV_2D block6_conv/Relu"``: the op and the first of the fused tensor names.

    The converter joins the names of fused ops with ``;`` (``.../Relu;.../BiasAdd;...``);
    the first is the layer's own. Keras' ``functional_N/`` prefix is dropped.
    """
    name = error.tensor.split(";")[0]
    head, _, rest = name.partition("/")
    if head.startswith("functional") and rest:
        name = rest
    return f"{error.op} {_short(name, width)}"


def _short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else "..." + name[-(width - 3):]
