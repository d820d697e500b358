"""The seed projects' keypoint route against edgepose's, on seed-shaped data.

Seed route: the keypoint MLP exported to ONNX (``tf2onnx.convert.from_function``)
and quantized dynamically by ONNX Runtime (``quantize_dynamic``, int8
weights, activations quantized at run time). edgepose route: the same trained
Keras model converted to full-integer TFLite (``edgepose.converters.convert_run``) and
run by ai-edge-litert with XNNPACK. Compared on each category's test split:
accuracy (and agreement with Keras), file size, and per-sample latency
(batch 1, one thread).

Data: tests/keypoint_poses.py's "stance" poses written like the seed
recordings: two categories (stance 355 samples, execution 243), two classes
each, 28 numbers per sample (body14 x, y in pixels); trained with
``edgepose train keypoints`` defaults (one model per category).

Latency is measured as RATIOS in one run: the four engines' loops are
interleaved in blocks, so a machine shared with other work slows them alike;
each ratio is an engine's median per-sample time over edgepose int8's. The
load average at the start and the end is recorded, and the report says when
the machine was busy (load average above half its CPU count).

Needs the ``bench`` extra (``pip install -e '.[bench]'``: tf2onnx, onnx,
onnxruntime). Writes ``benchmarks/results/<machine>/keypoints_onnx.json`` and
``.md``. Run: ``.venv/bin/python benchmarks/keypoints_onnx.py [--blocks 5]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np  # noqa: E402
from benchmark_utils import results_dir, write_results  # noqa: E402  (the one path set-up)

from edgepose.bench.device import machine_slug  # noqa: E402

# category -> (samples per class, seed); one sample is removed from the second class
CATEGORIES = {"stance": (178, 1), "execution": (122, 2)}
ENGINES = ("edgepose TFLite int8", "TFLite fp32", "ONNX Runtime fp32",
           "ONNX Runtime dynamic int8")
REFERENCE = ENGINES[0]


@dataclass
class EngineRow:
    engine: str
    file: str
    size_bytes: int
    accuracy: float
    agree_with_keras: float
    latency_ratio: float | None = None  # median per-sample time / edgepose int8's


@dataclass
class CategoryResult:
    category: str
    samples: int
    test_samples: int
    keras_accuracy: float
    fit: dict
    rows: list[EngineRow] = field(default_factory=list)


@dataclass
class OnnxComparison:
    machine: str
    cpu_count: int | None
    python: str
    packages: dict[str, str]
    load_average: list[float]  # 1-minute load average at the start and at the end
    busy: bool
    blocks: int
    per_block: int
    categories: list[CategoryResult] = field(default_factory=list)


def write_dataset(root: Path) -> Path:
    from tests.keypoint_poses import write_pose_dataset

    for category, (per_class, seed) in CATEGORIES.items():
        write_pose_dataset(root, "pixels", per_class=per_class, seed=seed, category=category,
                           task="stance")
        max((root / category / "up").glob("*.json")).unlink()
    return root


def export_onnx(model, path: Path) -> None:
    """Keras model -> ONNX through tf2onnx, the seed's exporter (opset 17, batch axis free)."""
    import tf2onnx

    from edgepose.keras_quiet import tf

    spec = (tf.TensorSpec((None, model.input_shape[1]), tf.float32, name="keypoints"),)
    tf2onnx.convert.from_function(tf.function(lambda x: model(x, training=False)),
                                  input_signature=spec, opset=17, output_path=str(path))


def onnx_predictor(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x[None]})[0][0]


def tflite_predictor(path: Path):
    from edgepose.runtime.classifier import Classifier

    return Classifier.from_file(path, num_threads=1).predict


def interleaved_ratios(predictors: dict, x: np.ndarray, blocks: int, per_block: int
                       ) -> dict[str, float]:
    """Median per-sample time of each predictor over :data:`REFERENCE`'s, loops interleaved."""
    times: dict[str, list[float]] = {name: [] for name in predictors}
    for predict in predictors.values():  # warm-up
        for sample in x[:10]:
            predict(sample)
    for _ in range(blocks):
        for name, predict in predictors.items():
            for i in range(per_block):
                sample = x[i % len(x)]
                start = time.perf_counter_ns()
                predict(sample)
                times[name].append(time.perf_counter_ns() - start)
    reference = float(np.median(times[REFERENCE]))
    return {name: round(float(np.median(t)) / reference, 2) for name, t in times.items()}


def compare_category(run: Path, work: Path, blocks: int, per_block: int) -> CategoryResult:
    import json

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from edgepose.converters import convert_run
    from edgepose.keras_quiet import keras
    from edgepose.rundir import RunDir, load_inputs

    convert_run(run, ["fp32", "int8"])
    rundir = RunDir.open(run)
    x, y = load_inputs(rundir.splits, rundir.splits.samples("test"), rundir.config)
    x = x.astype(np.float32)
    model = keras.saving.load_model(str(rundir.model_path), compile=False)
    keras_pred = model.predict_on_batch(x).argmax(1)
    fp32_onnx, int8_onnx = work / "mlp.onnx", work / "mlp_dynamic_int8.onnx"
    export_onnx(model, fp32_onnx)
    quantize_dynamic(str(fp32_onnx), str(int8_onnx), weight_type=QuantType.QInt8)
    files = {ENGINES[0]: run / "model_int8.tflite", ENGINES[1]: run / "model_fp32.tflite",
             ENGINES[2]: fp32_onnx, ENGINES[3]: int8_onnx}
    predictors = {name: (tflite_predictor(path) if path.suffix == ".tflite"
                         else onnx_predictor(path)) for name, path in files.items()}
    ratios = interleaved_ratios(predictors, x, blocks, per_block)
    config = json.loads((run / "config.json").read_text())
    result = CategoryResult(
        category=config["category"], samples=len(rundir.splits.items), test_samples=len(y),
        keras_accuracy=round(float(np.mean(keras_pred == y)), 4),
        fit={k: config["training"][k] for k in ("batch_size", "epochs", "patience", "lr")})
    for name, predict in predictors.items():
        pred = np.array([np.argmax(predict(sample)) for sample in x])
        result.rows.append(EngineRow(
            engine=name, file=files[name].name, size_bytes=files[name].stat().st_size,
            accuracy=round(float(np.mean(pred == y)), 4),
            agree_with_keras=round(float(np.mean(pred == keras_pred)), 4),
            latency_ratio=ratios[name]))
    return result


def to_markdown(report: OnnxComparison) -> str:
    load = ", ".join(f"{v:.2f}" for v in report.load_average)
    lines = [
        f"# Keypoint MLP: the seed's ONNX route vs edgepose int8 TFLite ({report.machine})", "",
        f"{report.cpu_count} CPUs, Python {report.python}, "
        + ", ".join(f"{k} {v}" for k, v in report.packages.items()) + ".",
        "Data: seed-shaped synthetic stance poses (body14 x, y in pixels), one model per "
        "category trained with `edgepose train keypoints` defaults; accuracy on each "
        "category's test split.",
        f"Latency: ratio of median per-sample time (batch 1, one thread) to edgepose int8's, "
        f"the four loops interleaved in {report.blocks} blocks of {report.per_block} calls; "
        f"> 1 means slower than edgepose int8. Load average (start, end): {load}"
        + ("; **taken on a shared, busy machine: ratios only, no absolute times**."
           if report.busy else "."), ""]
    for cat in report.categories:
        lines += [f"## {cat.category} ({cat.samples} samples, {cat.test_samples} test; "
                  f"Keras accuracy {cat.keras_accuracy:.1%}; batch {cat.fit['batch_size']}, "
                  f"patience {cat.fit['patience']})", "",
                  "| engine | file | size KiB | accuracy | agrees with Keras | latency ratio |",
                  "|---|---|---|---|---|---|"]
        for r in cat.rows:
            lines.append(f"| {r.engine} | {r.file} | {r.size_bytes / 1024:.1f} | "
                         f"{r.accuracy:.1%} | {r.agree_with_keras:.1%} | "
                         f"{r.latency_ratio:.2f}x |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--per-block", type=int, default=400)
    parser.add_argument("--out", default=None, help="results folder [default: per machine]")
    args = parser.parse_args()
    try:
        import onnx
        import onnxruntime
        import tf2onnx
    except ImportError as exc:
        sys.exit(f"error: {exc.name} is missing: pip install -e '.[bench]'")
    from edgepose.train.keypoint_classifier import KeypointTrainOptions, train_keypoint_categories

    cpus = os.cpu_count() or 1
    start_load = os.getloadavg()[0]
    report = OnnxComparison(
        machine=machine_slug(), cpu_count=os.cpu_count(), python=platform.python_version(),
        packages={"tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__,
                  "onnxruntime": onnxruntime.__version__},
        load_average=[], busy=False, blocks=args.blocks, per_block=args.per_block)
    with tempfile.TemporaryDirectory(prefix="edgepose-onnx-") as tmp:
        data = write_dataset(Path(tmp) / "data")
        options = KeypointTrainOptions(output=str(Path(tmp) / "runs"))
        options.training.verbose = 0
        for trained in train_keypoint_categories(data, options):
            work = Path(tmp) / f"onnx-{trained.category}"
            work.mkdir()
            report.categories.append(compare_category(Path(trained.run_dir), work,
                                                      args.blocks, args.per_block))
    report.load_average = [round(start_load, 2), round(os.getloadavg()[0], 2)]
    report.busy = max(report.load_average) > cpus / 2
    out = results_dir(args.out, report.machine)
    write_results(out, "keypoints_onnx", asdict(report), to_markdown(report))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
