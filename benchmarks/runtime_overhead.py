"""Per-sample overhead of edgepose.runtime over a bare ``interpreter.invoke()`` loop.

Model: MobileNetV3-Small at 224x224 (``weights=None``, a 5-class softmax head),
full-integer int8 with int8 input/output, calibrated on real photographs from
scikit-image; built here with TensorFlow (host side), then measured with
ai-edge-litert only.

Two loops on the SAME interpreter, interleaved in blocks so that frequency
changes and other load hit both alike, image decode excluded (the images are
decoded once, up front):

- bare:    ``set_tensor(prequantized) ; invoke() ; get_tensor(output)``
- runtime: ``Classifier.classify(decoded 224x224 RGB array, k=3)``:
           array checks, preprocessing, quantization, invoke, dequantization, top-k

overhead = p50(runtime) / p50(bare) - 1, target < 10%. For information, the
same with a 640x480 camera-sized frame (resize + centre crop in the runtime).

Results: benchmarks/results/<machine_slug()>/runtime_overhead.json and .md.
Run: ``.venv/bin/python benchmarks/runtime_overhead.py [--runs 300] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
SIZE = 224
TARGET = 0.10


@dataclass
class OverheadResult:
    """Bare invoke loop vs the runtime, on one model and device."""

    model: str
    model_bytes: int
    threads: int
    runs_per_loop: int
    blocks: int
    runtime: str
    delegation: str
    bare: object  # LatencyStats
    runtime_same_size: object
    runtime_with_resize: object
    overhead_p50: float  # runtime_same_size.p50 / bare.p50 - 1
    overhead_mean: float
    overhead_min: float  # least disturbed by other load on the machine
    overhead_p50_with_resize: float
    target: float
    passed: bool
    device: object  # DeviceInfo


def _photos() -> list[np.ndarray]:
    from skimage import data

    names = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "cat",
             "retina", "hubble_deep_field")
    photos = []
    for name in names:
        loader = getattr(data, name, None)
        if loader is not None:
            img = np.asarray(loader())
            if img.ndim == 3 and img.shape[-1] >= 3:
                photos.append(img[..., :3].astype(np.uint8))
    return photos


def build_model(out: Path) -> Path:
    """MobileNetV3-Small 224 int8 (int8 I/O), calibrated on random crops of real photos."""
    from edgepose.keras_quiet import keras, tf
    from edgepose.runtime.preprocess import ImagePreprocessing, image_to_array

    keras.utils.set_random_seed(0)
    backbone = keras.applications.MobileNetV3Small(input_shape=(SIZE, SIZE, 3), weights=None,
                                                   include_top=False, pooling="avg")
    inputs = keras.Input((SIZE, SIZE, 3), batch_size=1)
    outputs = keras.layers.Dense(5, activation="softmax")(backbone(inputs))
    model = keras.Model(inputs, outputs)
    saved = out.parent / "saved_model"
    model.export(str(saved), verbose=False)

    rng = np.random.default_rng(0)
    spec = ImagePreprocessing(SIZE, SIZE, "bilinear", "center")
    calibration = []
    for photo in _photos():
        for _ in range(4):
            h, w = photo.shape[:2]
            ch, cw = int(h * rng.uniform(0.5, 1)), int(w * rng.uniform(0.5, 1))
            top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            crop = np.ascontiguousarray(photo[top:top + ch, left:left + cw])
            calibration.append(image_to_array(crop, spec).astype(np.float32)[None])

    def representative():
        yield from ([x] for x in calibration)

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    out.write_bytes(converter.convert())
    return out


def measure(model_path: Path, threads: int, runs: int, blocks: int) -> OverheadResult:
    from PIL import Image

    from edgepose.bench.device import conditions, device_info
    from edgepose.bench.stats import latency_stats
    from edgepose.runtime import Classifier

    classifier = Classifier.from_file(model_path, num_threads=threads)
    interpreter = classifier.interpreter
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    photos = _photos()
    same_size = [np.asarray(Image.fromarray(p).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
                 for p in photos]
    camera = [np.asarray(Image.fromarray(p).resize((640, 480), Image.Resampling.BILINEAR))
              for p in photos]
    prepared = []
    for img in same_size:  # the bare loop gets inputs already quantized, outside the timing
        classifier.set_input(img)
        prepared.append(interpreter.get_tensor(inp["index"]).copy())

    def bare(i: int) -> None:
        interpreter.set_tensor(inp["index"], prepared[i % len(prepared)])
        interpreter.invoke()
        interpreter.get_tensor(out["index"])

    def runtime(i: int) -> None:
        classifier.classify(same_size[i % len(same_size)], 3)

    def runtime_resize(i: int) -> None:
        classifier.classify(camera[i % len(camera)], 3)

    loops = {"bare": bare, "runtime": runtime, "resize": runtime_resize}
    samples: dict[str, list[int]] = {name: [] for name in loops}
    for fn in loops.values():  # warm-up, excluded
        for i in range(20):
            fn(i)
    before = conditions()
    per_block = max(1, runs // blocks)
    clock = time.perf_counter_ns
    for block in range(blocks):
        for name, fn in loops.items():
            for i in range(per_block):
                start = clock()
                fn(block * per_block + i)
                samples[name].append(clock() - start)
    after = conditions()
    stats = {name: latency_stats(values) for name, values in samples.items()}
    overhead = stats["runtime"].p50_ms / stats["bare"].p50_ms - 1
    return OverheadResult(
        model=model_path.name, model_bytes=model_path.stat().st_size, threads=threads,
        runs_per_loop=per_block * blocks, blocks=blocks, runtime=str(classifier.backend),
        delegation=classifier.delegation.summary(), bare=stats["bare"],
        runtime_same_size=stats["runtime"], runtime_with_resize=stats["resize"],
        overhead_p50=overhead,
        overhead_mean=stats["runtime"].mean_ms / stats["bare"].mean_ms - 1,
        overhead_min=stats["runtime"].min_ms / stats["bare"].min_ms - 1,
        overhead_p50_with_resize=stats["resize"].p50_ms / stats["bare"].p50_ms - 1,
        target=TARGET, passed=overhead < TARGET,
        device=device_info(str(classifier.backend), before, after))


def markdown(result: OverheadResult) -> str:
    def line(name: str, s) -> str:
        return (f"| {name} | {s.mean_ms:.3f} | {s.std_ms:.3f} | {s.min_ms:.3f} | {s.p50_ms:.3f} "
                f"| {s.p90_ms:.3f} | {s.p99_ms:.3f} | {s.max_ms:.3f} |")

    d = result.device
    lines = [
        f"# Runtime overhead on {d.slug}", "",
        f"{d.board or d.cpu_model}, {d.cores} cores, governor {d.governor or 'unknown'}; "
        f"Python {d.python}, {result.runtime}; threads {result.threads}; "
        f"{result.runs_per_loop} timed runs per loop in {result.blocks} interleaved blocks.",
        f"Model: {result.model} ({result.model_bytes / 1024:.0f} KB), XNNPACK: "
        f"{result.delegation}.", "",
        "| loop (ms) | mean | std | min | p50 | p90 | p99 | max |",
        "|---|---|---|---|---|---|---|---|",
        line("bare set_tensor+invoke+get_tensor", result.bare),
        line("Classifier.classify, 224x224 array", result.runtime_same_size),
        line("Classifier.classify, 640x480 array (resize+crop)", result.runtime_with_resize), "",
        f"**Overhead (p50): {result.overhead_p50:+.1%}** (mean {result.overhead_mean:+.1%}); "
        f"target < {result.target:.0%}: {'PASS' if result.passed else 'FAIL'}.",
        f"With a 640x480 frame to resize: {result.overhead_p50_with_resize:+.1%} (information).",
    ]
    lines += [f"\n> warning: {w}" for w in d.warnings]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from edgepose.bench.device import machine_slug
    from edgepose.fileio import write_json, write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="timed runs per loop")
    parser.add_argument("--blocks", type=int, default=8, help="interleaved blocks")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / machine_slug())
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(Path(tmp) / "mobilenetv3small_224_int8.tflite")
        result = measure(model, args.threads, args.runs, args.blocks)
    write_json(args.out / "runtime_overhead.json", result)
    write_text(args.out / "runtime_overhead.md", markdown(result))
    print(markdown(result))
    print(f"wrote {args.out / 'runtime_overhead.json'} and .md")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
