"""Why int8 loses points on a trained run: float sets, and how a candidate is judged.

    python benchmarks/int8_drift.py RUN [RUN ...] [--candidates N] [--curve]

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

``--curve`` adds the first k / last k weighted ops kept float (:func:`float_curve`):
where in the network the lost points come from, and how much of it must stay
float to fit the budget. Per row and split: net drop (Keras - candidate accuracy),
points lost (Keras right, candidate wrong), disagreement (top-1 differs), in points
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


def error_profile(calibrated: bytes, x, samples: int = 16) -> list[dict]:
    """Per int8 tensor, in execution order: the accumulated relative error and its range.

    The calibrated float model and its plain int8 quantization (float I/O) run on the
    same ``samples`` inputs with reference kernels and every tensor kept; per tensor
    of the same name: ``relerr`` = RMS(dequantized int8 - float) / std(float) (error
    accumulated from the input, not the op's own), ``std_steps`` = std(float) / the
    int8 step, ``p9999_over_max`` = 99.99th percentile of |x| / max |x| (well under 1:
    an outlier sets the range), ``crushed`` = share of channels whose whole range is
    under 2 int8 steps.
    """
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from edgepose.converters.fallback import execution_order
    from edgepose.converters.tflite import quantize_calibrated

    quantized = quantize_calibrated(calibrated, "float", [])

    def tensors(model: bytes, sample) -> dict:
        it = Interpreter(model_content=model, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=(
                             OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
        it.allocate_tensors()
        inp = it.get_input_details()[0]
        if inp["dtype"] == np.int8:  # the quantizer may keep an int8 input
            scale, zero = inp["quantization"]
            sample = np.clip(np.round(sample / scale + zero), -128, 127)
        it.set_tensor(inp["index"], sample[None].astype(inp["dtype"]))
        it.invoke()
        out = {}
        for t in it.get_tensor_details():
            try:
                out[t["name"]] = (t, it.get_tensor(t["index"]))
            except ValueError:
                continue
        return out

    acc: dict[str, dict] = {}
    for i in range(min(samples, len(x))):
        floats, ints = tensors(calibrated, x[i]), tensors(quantized, x[i])
        for name, (t, q) in ints.items():
            scale, zero = t["quantization"]
            f = floats.get(name, (None, None))[1]
            if (t["dtype"] != np.int8 or not scale or f is None or f.shape != q.shape
                    or f.dtype != np.float32 or f.ndim < 2):
                continue
            d = (q.astype(np.float32) - zero) * scale
            a = acc.setdefault(name, {"n": 0, "s": 0.0, "ss": 0.0, "err": 0.0, "max": 0.0,
                                      "abs": [], "lo": None, "hi": None, "scale": scale})
            a["n"] += f.size
            a["s"] += float(f.sum())
            a["ss"] += float((f.astype(np.float64) ** 2).sum())
            a["err"] += float(((d - f).astype(np.float64) ** 2).sum())
            a["max"] = max(a["max"], float(np.abs(f).max()))
            a["abs"].append(np.random.default_rng(i).choice(np.abs(f).ravel(),
                                                            min(f.size, 4000)))
            c = f.reshape(-1, f.shape[-1])
            a["lo"] = c.min(0) if a["lo"] is None else np.minimum(a["lo"], c.min(0))
            a["hi"] = c.max(0) if a["hi"] is None else np.maximum(a["hi"], c.max(0))
    rows = []
    for index, (name, op) in enumerate(execution_order(calibrated)):
        a = acc.get(name)
        if a is None:
            continue
        mean = a["s"] / a["n"]
        std = max(float(np.sqrt(max(a["ss"] / a["n"] - mean ** 2, 0.0))), 1e-12)
        p9999 = float(np.percentile(np.concatenate(a["abs"]), 99.99))
        rows.append({"index": index, "op": op, "tensor": name.split(";")[0],
                     "relerr": round(float(np.sqrt(a["err"] / a["n"])) / std, 3),
                     "std_steps": round(std / a["scale"], 1),
                     "p9999_over_max": round(p9999 / max(a["max"], 1e-12), 3),
                     "crushed": round(float(np.mean(a["hi"] - a["lo"] < 2 * a["scale"])), 3)})
    return rows


def measure_run(run: Path, max_candidates: int = 10, with_curve: bool = False) -> dict:
    """The rows described in the module docstring for one run directory; with
    ``with_curve`` also :func:`float_curve`'s sets (``curve``)."""
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
        profile = error_profile(calibrated, contract.normalize(ref.x))
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
        def evaluate(label: str, float_set: list[str]) -> dict:
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
            print(f"  {label:28s} {row}", flush=True)
            return row

        rows = [evaluate(label, float_set) for label, float_set in sets[:max_candidates]]
        curve = [evaluate(label, float_set) for label, float_set in
                 (float_curve(order, names) if with_curve else [])]
    return {"run": run.name, "keras_test_accuracy": ref.accuracy,
            "keras_val_accuracy": float(np.mean(keras["val"] == y_val)),
            "val_samples": len(y_val), "test_samples": len(ref.y), "rows": rows,
            "curve": curve, "profile": profile}


def float_curve(order: list[tuple[str, str]], quantizable: list[str],
                ) -> list[tuple[str, list[str]]]:
    """Float sets that locate where the error is: the first k weighted ops (and the
    ops between them) for k = 1..8 then every 6th up to all of them, and the last k
    weighted ops (k = 5, 20) -- each as (label, tensor names)."""
    from edgepose.converters.fallback import WEIGHTED_OPS

    known = set(quantizable)
    ops = [(name, op) for name, op in order if name in known]
    starts = [i for i, (_, op) in enumerate(ops) if op in WEIGHTED_OPS]
    ends = starts[1:] + [len(ops)]
    n = len(starts)
    counts = sorted({*range(1, min(n, 8) + 1), *range(8, n, 6), n})
    sets = [(f"first {k} of {n} weighted", [name for name, _ in ops[:ends[k - 1]]])
            for k in counts]
    sets += [(f"last {k} of {n} weighted", [name for name, _ in ops[starts[n - k]:]])
             for k in (5, 20) if k < n]
    return sets


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
        if run.get("curve"):
            lines += ["Where the error is: points lost with the first / last k weighted ops "
                      "(and the ops between them) kept float:", "",
                      "| float ops | n | val lost | test net drop | test lost |",
                      "|---|---:|---:|---:|---:|"]
            lines += [f"| {r['float_ops']} | {r['count']} | {r['val']['lost']:.2f} "
                      f"| {r['test']['net_drop']:.2f} | {r['test']['lost']:.2f} |"
                      for r in run["curve"]]
            lines.append("")
        profile = run.get("profile") or []
        if profile:
            picks = sorted({round(q * (len(profile) - 1)) for q in (0, .05, .1, .25, .5, .75,
                                                                    .9, 1.0)})
            lines += ["Accumulated error, plain int8 (16 test inputs, reference kernels; "
                      "relerr = RMS(int8 - float) / std(float); over all "
                      f"{len(profile)} int8 tensors: lowest p99.99/max "
                      f"{min(r['p9999_over_max'] for r in profile):.2f}, most channels "
                      f"crushed under 2 steps {max(r['crushed'] for r in profile):.2f}):", "",
                      "| op # | op | tensor | relerr | std / step |", "|---:|---|---|---:|---:|"]
            for i in picks:
                r = profile[i]
                lines.append(f"| {r['index']} | {r['op']} | `{r['tensor'][-60:]}` "
                             f"| {r['relerr']:.3f} | {r['std_steps']:.1f} |")
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--curve", action="store_true",
                        help="also the float-prefix/suffix curve (where the error is)")
    args = parser.parse_args()

    from edgepose.bench.device import machine_slug
    from edgepose.fileio import read_json

    out_dir = results_dir(machine=machine_slug())
    path = out_dir / "int8_drift.json"
    stored = read_json(path) if path.is_file() else {"runs": [], "commands": []}
    command = " ".join(["python benchmarks/int8_drift.py", *sys.argv[1:]])
    for run in args.runs:
        print(run.name, flush=True)
        measured = measure_run(run, args.candidates, args.curve)
        runs = [r for r in stored["runs"] if r["run"] != measured["run"]] + [measured]
        stored = {"machine": machine_slug(), "date": time.strftime("%Y-%m-%d"),
                  "commands": [c for c in stored["commands"] if c != command] + [command],
                  "runs": runs}
        write_results(out_dir, "int8_drift", stored, markdown(stored))


if __name__ == "__main__":
    main()
