"""Why int8 loses points on a trained run: float sets, and how a candidate is judged.

    python benchmarks/int8_drift.py RUN [RUN ...] [--cache DIR]

For each run directory (e.g. a cell of ``benchmarks/int8_matrix.py``; give COPIES,
this script writes ``reference_outputs.npz`` into the run like ``edgepose convert``):
export and calibrate as ``edgepose convert`` does (200 stratified train samples,
seed 0), then quantize the calibrated model with different op sets kept float
(:func:`edgepose.converters.tflite.quantize_calibrated`) and measure each on the
validation AND the test split against the Keras model:

- ``none``: plain int8;
- ``input normalization``: the elementwise ops before the first weighted op
  (an in-graph Rescaling/Normalization) kept float, the stem conv int8;
- ``stem conv``: only the first weighted op float;
- the auto-fallback candidates in the order ``--auto-fallback`` tries them
  (:mod:`edgepose.converters.fallback`: ranked 1, 2, 4, ... and prefixes).

Per row and split: net drop (Keras - candidate accuracy), points lost (Keras
right, candidate wrong), disagreement (top-1 differs), in points
(:func:`edgepose.converters.selection.flips`). A net drop near 0 with a large
disagreement is flips cancelling, which is why auto-fallback selects by points lost.
The result is ``benchmarks/results/<machine>/int8_drift.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmark_utils import results_dir, write_results  # noqa: E402  (the one path set-up)


def measure_run(run: Path, max_candidates: int = 10) -> dict:
    """The rows described in the module docstring for one run directory."""
    import numpy as np

    from edgepose.converters.conversion_inputs import calibration_set, reference_outputs
    from edgepose.converters.convert import _load
    from edgepose.converters.debugger import layer_errors
    from edgepose.converters.export import export_saved_model
    from edgepose.converters.fallback import (
        WEIGHTED_OPS,
        execution_order,
        prefix_candidates,
        ranked_candidates,
    )
    from edgepose.converters.model_outputs import keras_probabilities, tflite_probabilities
    from edgepose.converters.options import ConvertOptions
    from edgepose.converters.selection import flips
    from edgepose.converters.tflite import calibrate, quantize_calibrated
    from edgepose.rundir import load_inputs
    from edgepose.runtime.classifier import Classifier

    options = ConvertOptions()
    loaded = _load(run, options, lambda message: None)
    src, contract = loaded.src, loaded.contract
    ref = reference_outputs(src, loaded.model, contract, loaded.shape)
    cal = calibration_set(src, loaded.shape, contract, options, lambda message: None)
    val = src.splits.samples("val")
    x_val, y_val = load_inputs(src.splits, val, src.config)
    keras = {"val": keras_probabilities(loaded.model, contract.normalize(x_val)).argmax(1),
             "test": ref.probabilities.argmax(1)}
    data = {"val": (x_val, y_val), "test": (ref.x, ref.y)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="int8-drift-") as tmp:
        saved = export_saved_model(loaded.model, Path(tmp) / "saved",
                                   contract.normalize(ref.x[:4]), src.model_path)
        calibrated = calibrate(saved, cal)
        order = execution_order(calibrated)
        ranked = layer_errors(saved, cal)
        names = [e.tensor for e in ranked]
        first = next(i for i, (_, op) in enumerate(order) if op in WEIGHTED_OPS)
        quantizable = set(names)
        sets = [("none", []),
                ("input normalization", [n for n, _ in order[:first] if n in quantizable]),
                ("stem conv", [order[first][0]])]
        limit = max(1, len(ranked) // 2)
        proposals = [(len(c), 0, "ranked", c) for c in ranked_candidates(ranked, limit)]
        proposals += [(len(c), 1, "prefix", c)
                      for c in prefix_candidates(order, names, limit)]
        sets += [(f"fallback {s} {n}", c) for n, _, s, c in sorted(proposals,
                                                                   key=lambda p: p[:2])]
        for label, float_set in sets[:max_candidates]:
            model = Path(tmp) / "candidate.tflite"
            model.write_bytes(quantize_calibrated(calibrated, "int8", float_set))
            classifier = Classifier.from_file(model, num_threads=1,
                                              stated=contract.as_stated())
            row = {"float_ops": label, "count": len(float_set)}
            for split, (x, y) in data.items():
                pred = tflite_probabilities(classifier, x).argmax(1)
                f = flips(keras[split], pred, y)
                row[split] = {"net_drop": round(f.net_drop, 2), "lost": round(f.lost, 2),
                              "disagree": round(f.disagree, 2)}
            del classifier
            rows.append(row)
            print(f"  {label:28s} {row}", flush=True)
    return {"run": run.name, "keras_test_accuracy": ref.accuracy,
            "keras_val_accuracy": float(np.mean(keras["val"] == y_val)),
            "val_samples": len(y_val), "test_samples": len(ref.y), "rows": rows}


def markdown(results: dict) -> str:
    lines = [f"# Where int8 loses points, and how a candidate is judged ({results['machine']}, "
             f"{results['date']})", "",
             "Made by " + ", then ".join(f"`{c}`" for c in results["commands"]) + ". "
             "Each row: the calibrated model (200 stratified train samples, seed 0) quantized "
             "with these ops kept float; per split the net drop (Keras - int8 accuracy), the "
             "points lost (Keras right, int8 wrong) and the disagreement (top-1 differs), in "
             "points. `input normalization` = the elementwise ops before the first conv (an "
             "in-graph Rescaling/Normalization); `fallback ...` = the candidates "
             "`--auto-fallback` tries, in its order.", ""]
    for run in results["runs"]:
        lines += [f"## {run['run']} (Keras {100 * run['keras_val_accuracy']:.1f}% val, "
                  f"{100 * run['keras_test_accuracy']:.1f}% test; {run['val_samples']} / "
                  f"{run['test_samples']} samples)", "",
                  "| float ops | n | val net drop | val lost | val disagree | test net drop "
                  "| test lost | test disagree |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in run["rows"]:
            v, t = r["val"], r["test"]
            lines.append(f"| {r['float_ops']} | {r['count']} | {v['net_drop']:.2f} "
                         f"| {v['lost']:.2f} | {v['disagree']:.2f} | {t['net_drop']:.2f} "
                         f"| {t['lost']:.2f} | {t['disagree']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--candidates", type=int, default=10)
    args = parser.parse_args()

    from edgepose.bench.device import machine_slug
    from edgepose.fileio import read_json

    out_dir = results_dir(machine=machine_slug())
    path = out_dir / "int8_drift.json"
    stored = read_json(path) if path.is_file() else {"runs": [], "commands": []}
    command = " ".join(["python benchmarks/int8_drift.py", *sys.argv[1:]])
    for run in args.runs:
        print(run.name, flush=True)
        measured = measure_run(run, args.candidates)
        runs = [r for r in stored["runs"] if r["run"] != measured["run"]] + [measured]
        stored = {"machine": machine_slug(), "date": time.strftime("%Y-%m-%d"),
                  "commands": [c for c in stored["commands"] if c != command] + [command],
                  "runs": runs}
        write_results(out_dir, "int8_drift", stored, markdown(stored))


if __name__ == "__main__":
    main()
