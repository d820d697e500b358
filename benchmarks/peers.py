"""edgepose against the usual alternatives, measured side by side in the same process.

(a) Image classifier: the plain loop of the common Raspberry Pi examples --
``Interpreter(model_path=...)`` with default settings, then per image
``Image.open().convert("RGB").resize()``, ``np.expand_dims``, (for an int8 model
``x / scale + zero_point`` as in TensorFlow's integer-quantization tutorial),
``set_tensor``, ``invoke``, ``get_tensor`` -- against edgepose's
``Classifier.classify_image`` on the same files (default threads and threads=2).
End-to-end per-image latency, ratios, and whether both give the same top-1.
The loops run interleaved in blocks so drift of the machine hits all alike.

(b) Keypoint classifier: the same Keras MLP exported to ONNX (tf2onnx) and run in
ONNX Runtime, fp32 and ``onnxruntime.quantization.quantize_dynamic`` int8,
against the TFLite modes through ``Classifier.predict``; batch 1, one thread each,
accuracy and top-1 agreement with Keras on the test split.

Models are the demo's runs (``benchmarks/demo.py --models DIR``, default
``.cache/bench/models``). Results: benchmarks/results/<machine>/peers.json/.md.
Needs ``pip install tf2onnx onnx onnxruntime`` for (b); without them (b) says so.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
from benchmark_utils import ROOT, results_dir, write_results  # noqa: E402  (the one path set-up)


def plain_loop(model_path: Path, resample=None):
    """The Raspberry Pi example loop, as written in the common tutorials.

    ``resample=None`` keeps PIL's default resize filter (bicubic), as the examples do.
    """
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    interpreter = Interpreter(model_path=str(model_path))
    interpreter.allocate_tensors()
    input_details = interpreter.get_input_details()
    output_details = interpreter.get_output_details()
    _, height, width, _ = input_details[0]["shape"]
    floating_model = input_details[0]["dtype"] == np.float32
    scale, zero_point = input_details[0]["quantization"]

    def classify(path: Path) -> int:
        img = Image.open(path).convert("RGB")
        img = img.resize((width, height)) if resample is None else \
            img.resize((width, height), resample)
        input_data = np.expand_dims(img, axis=0)
        if floating_model:
            input_data = np.float32(input_data)
        else:
            input_data = (input_data / scale + zero_point).astype(input_details[0]["dtype"])
        interpreter.set_tensor(input_details[0]["index"], input_data)
        interpreter.invoke()
        output_data = interpreter.get_tensor(output_details[0]["index"])
        return int(np.squeeze(output_data).argmax())

    return classify


def edgepose_loop(model_path: Path, threads: int | None):
    from edgepose.runtime.classifier import Classifier

    classifier = Classifier.from_file(model_path, num_threads=threads)
    index = {name: i for i, name in enumerate(classifier.labels)}
    return lambda path: index[classifier.classify_image(path, k=1)[0].label]


def interleaved(loops: dict, files: list[Path], runs: int, blocks: int, warmup: int
                ) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    """Per-image ms of each loop over ``runs`` images, in ``blocks`` alternating blocks."""
    times = {name: [] for name in loops}
    for loop in loops.values():
        for i in range(warmup):
            loop(files[i % len(files)])
    per_block = max(1, runs // blocks)
    for block in range(blocks):
        for name, loop in loops.items():
            for i in range(block * per_block, (block + 1) * per_block):
                start = time.perf_counter_ns()
                loop(files[i % len(files)])
                times[name].append((time.perf_counter_ns() - start) / 1e6)
    top1 = {name: [loop(f) for f in files] for name, loop in loops.items()}
    return times, top1


def image_peers(run: Path, modes: list[str], runs: int, blocks: int, warmup: int) -> list[dict]:
    from edgepose.rundir import RunDir

    rundir = RunDir.open(run)
    splits = rundir.splits
    test = splits.samples("test")
    files = [splits.absolute(s) for s in test]
    labels = np.array([s.label for s in test])
    rows = []
    for mode in modes:
        model = rundir.tflite_path(mode)
        if not model.is_file():
            print(f"(a) {model} missing, skipped", flush=True)
            continue
        loops = {"plain example loop (Interpreter defaults)": plain_loop(model),
                 "edgepose classify_image (default threads)": edgepose_loop(model, None),
                 "edgepose classify_image (threads=2)": edgepose_loop(model, 2)}
        times, top1 = interleaved(loops, files, runs, blocks, warmup)
        plain_name = next(iter(loops))
        # the same loop with edgepose's bilinear resize: are differences only the filter?
        from PIL import Image

        bilinear = plain_loop(model, Image.Resampling.BILINEAR)
        top1_bilinear = np.array([bilinear(f) for f in files])
        plain_p50 = float(np.median(times[plain_name]))
        for name in loops:
            p50 = float(np.median(times[name]))
            rows.append({"model": model.name, "mode": mode, "loop": name,
                         "p50_ms": p50, "p90_ms": float(np.percentile(times[name], 90)),
                         "mean_ms": float(np.mean(times[name])),
                         "plain_over_this": plain_p50 / p50,
                         "accuracy": float(np.mean(np.array(top1[name]) == labels)),
                         "top1_same_as_plain": float(np.mean(
                             np.array(top1[name]) == np.array(top1[plain_name]))),
                         "top1_same_as_plain_bilinear": float(np.mean(
                             np.array(top1[name]) == top1_bilinear)),
                         "images": len(files), "timed": len(times[name])})
        print(f"(a) {mode}: done", flush=True)
    return rows


def export_onnx(keras_path: Path, out: Path) -> tuple[str | None, list[str]]:
    """Keras MLP -> ONNX: tf2onnx.from_keras first, else the exported SavedModel via the CLI.

    Returns (the method that worked or None, the errors of the attempts that failed).
    """
    from edgepose.keras_quiet import keras, tf

    errors = []
    model = keras.models.load_model(keras_path, compile=False)
    features = int(model.inputs[0].shape[-1])
    try:
        import tf2onnx

        spec = (tf.TensorSpec((None, features), tf.float32, name="features"),)
        tf2onnx.convert.from_keras(model, input_signature=spec, output_path=str(out))
        return "tf2onnx.convert.from_keras", errors
    except Exception as exc:  # any failure of the exporter is a result to report
        errors.append(f"tf2onnx.convert.from_keras: {type(exc).__name__}: "
                      + (str(exc).strip().splitlines() or [""])[-1][:300])
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "saved"
        try:
            model.export(str(saved))
        except Exception as exc:
            errors.append(f"model.export: {type(exc).__name__}: {str(exc)[:300]}")
            return None, errors
        done = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model",
                               str(saved), "--output", str(out)], capture_output=True, text=True)
        if done.returncode == 0 and out.is_file():
            return "model.export + python -m tf2onnx.convert --saved-model", errors
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        errors.append(f"tf2onnx.convert --saved-model: {tail[:300]}")
    return None, errors


def _time_per_sample(predict, x: np.ndarray, runs: int, warmup: int) -> list[float]:
    for i in range(warmup):
        predict(x[i % len(x)])
    times = []
    for i in range(runs):
        start = time.perf_counter_ns()
        predict(x[i % len(x)])
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def keypoint_peers(run: Path, runs: int, warmup: int) -> dict:
    """TFLite modes vs ONNX Runtime fp32 / dynamic int8 for the keypoint MLP."""
    from edgepose.rundir import RunDir, load_inputs
    from edgepose.runtime.classifier import Classifier

    rundir = RunDir.open(run)
    x, y = load_inputs(rundir.splits, rundir.splits.samples("test"), rundir.config)
    keras_probs = np.load(rundir.reference_outputs_path)["probabilities"]
    keras_top1 = keras_probs.argmax(1)
    out = {"run": str(run), "test_samples": int(len(x)), "rows": [], "export": None,
           "export_errors": [], "packages": {}}

    def row(name: str, predict) -> None:
        probs = np.stack([predict(s) for s in x])
        times = _time_per_sample(predict, x, runs, warmup)
        out["rows"].append({"runtime": name, "p50_ms": float(np.median(times)),
                            "p90_ms": float(np.percentile(times, 90)),
                            "accuracy": float(np.mean(probs.argmax(1) == y)),
                            "top1_agree_keras": float(np.mean(probs.argmax(1) == keras_top1))})

    for mode in ("fp32", "fp16", "dynamic", "int8"):
        model = rundir.tflite_path(mode)
        if model.is_file():
            classifier = Classifier.from_file(model, num_threads=1)
            row(f"TFLite {mode} (edgepose, 1 thread)", classifier.predict)
    try:
        import onnx
        import onnxruntime as ort
        import tf2onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        out["export_errors"].append(f"not installed: {exc}")
        return out
    out["packages"] = {"tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__,
                       "onnxruntime": ort.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "mlp.onnx"
        method, errors = export_onnx(rundir.model_path, fp32)
        out["export"], out["export_errors"] = method, errors
        if method is None:
            return out
        int8 = Path(tmp) / "mlp_int8.onnx"
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
        for name, path in (("ONNX Runtime fp32", fp32), ("ONNX Runtime dynamic int8", int8)):
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
            input_name = session.get_inputs()[0].name
            row(f"{name} (1 thread)",
                lambda s, session=session, input_name=input_name:
                session.run(None, {input_name: s[None, :].astype(np.float32)})[0][0])
            out["rows"][-1]["size_bytes"] = path.stat().st_size
    return out


def to_markdown(results: dict) -> str:
    d = results["device"]
    lines = [f"# edgepose against the usual alternatives ({results['machine']})", "",
             f"{d['cpu_model']}, {d['cores']} cores, governor {d['governor'] or 'unknown'}, "
             f"Python "
             f"{d['python']}, {d['runtime']}. Same process, same files, loops interleaved in "
             f"{results['settings']['blocks']} blocks; ratio = plain-loop p50 / this p50 "
             "(> 1: faster than the plain loop). The plain loop resizes with PIL's default "
             "filter (bicubic), edgepose bilinear; the last column repeats the plain loop with a "
             "bilinear resize to show whether the top-1 differences are only that.", "",
             "| model | loop | e2e p50 ms | p90 ms | ratio vs plain | accuracy | "
             "top-1 same as plain | same as plain (bilinear) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results["image"]:
        lines.append(f"| {r['model']} | {r['loop']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
                     f"{r['plain_over_this']:.2f}x | {100 * r['accuracy']:.1f}% | "
                     f"{100 * r['top1_same_as_plain']:.1f}% | "
                     f"{100 * r['top1_same_as_plain_bilinear']:.1f}% |")
    k = results["keypoints"]
    lines += ["", f"## Keypoint MLP: TFLite vs ONNX Runtime ({k.get('test_samples', 0)} test "
              "samples, batch 1, one thread)", ""]
    if k.get("export"):
        packages = ", ".join(f"{n} {v}" for n, v in k["packages"].items())
        lines.append(f"ONNX export: {k['export']} ({packages}).")
    for error in k.get("export_errors", []):
        lines.append(f"- export attempt failed: `{error}`")
    lines += ["", "| runtime | p50 ms | p90 ms | accuracy | top-1 agree with Keras |",
              "|---|---|---|---|---|"]
    for r in k.get("rows", []):
        lines.append(f"| {r['runtime']} | {r['p50_ms']:.4f} | {r['p90_ms']:.4f} | "
                     f"{100 * r['accuracy']:.1f}% | {100 * r['top1_agree_keras']:.1f}% |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / ".cache" / "bench" / "models",
                        help="the demo's runs folder")
    parser.add_argument("--image-run", default="demo-digits-mobilenet_v2")
    parser.add_argument("--keypoint-run", default="demo-poses-mlp")
    parser.add_argument("--modes", default="fp32,int8", help="image model modes")
    parser.add_argument("--runs", type=int, default=400, help="timed images per loop")
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", type=Path, help="results folder [benchmarks/results/<machine>]")
    args = parser.parse_args()

    import ai_edge_litert

    from edgepose.bench.device import device_info, machine_slug

    results = {"machine": machine_slug(),
               "device": device_info(f"ai_edge_litert {ai_edge_litert.__version__}"),
               "settings": {k: str(v) for k, v in vars(args).items()}, "image": [],
               "keypoints": {}}
    results["settings"]["blocks"] = args.blocks
    results["image"] = image_peers(args.models / args.image_run, args.modes.split(","),
                                   args.runs, args.blocks, args.warmup)
    try:
        results["keypoints"] = keypoint_peers(args.models / args.keypoint_run, args.runs * 5,
                                              args.warmup)
    except Exception:  # report, keep (a)
        results["keypoints"] = {"export_errors": [traceback.format_exc(limit=2)]}
    out = results_dir(args.out, results["machine"])
    from dataclasses import asdict

    results["device"] = asdict(results["device"])
    write_results(out, "peers", results, to_markdown(results))
    print(to_markdown(results))


if __name__ == "__main__":
    main()
