"""Conversion matrix: time, size, accuracy and drift per mode x backbone x input size.

For each backbone (Keras applications, weights=None: nothing is downloaded) and
input size, trains briefly on real sklearn digits written as images, saves a
run directory and runs ``convert_run`` in every mode. Records per mode:
conversion seconds, file size, accuracy, drop vs Keras, top-1 agreement, KL,
latency (1 thread, XNNPACK) and XNNPACK partitions, into
benchmarks/results/<machine>/convert_matrix.json/.md. Takes minutes and GBs:
not part of the test suite.

    .venv/bin/python benchmarks/convert_matrix.py \
        [--backbones mobilenetv2,mobilenetv3small,efficientnetb0] [--sizes 224,96]
        [--modes fp32,fp16,dynamic,int8,int16x8]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmark_utils import results_dir, write_results  # noqa: E402  (the one path set-up)


def _backbone(name: str, size: int):
    from edgepose.keras_quiet import keras

    apps = keras.applications
    builders = {  # name -> (constructor, in-graph preprocessing layer(s))
        "mobilenetv2": lambda: apps.MobileNetV2(input_shape=(size, size, 3), alpha=1.0,
                                                weights=None, include_top=False, pooling="avg"),
        "mobilenetv3small": lambda: apps.MobileNetV3Small(
            input_shape=(size, size, 3), weights=None, include_top=False, pooling="avg",
            include_preprocessing=True),
        "mobilenetv3large": lambda: apps.MobileNetV3Large(
            input_shape=(size, size, 3), weights=None, include_top=False, pooling="avg",
            include_preprocessing=True),
        "efficientnetb0": lambda: apps.EfficientNetB0(input_shape=(size, size, 3), weights=None,
                                                      include_top=False, pooling="avg"),
    }
    needs_rescaling = name == "mobilenetv2"  # the others normalise raw 0..255 themselves
    return builders[name](), needs_rescaling


def build_run(root: Path, backbone: str, size: int, per_class: int, epochs: int,
              training: str = "full") -> Path:
    """A run directory for ``backbone`` at ``size`` px on digits (weights=None, offline).

    ``training="full"`` trains the whole network for ``epochs`` epochs (BatchNorm
    momentum lowered so its statistics converge in few steps). ``"probe"`` is the
    quick variant: random convolutions with BatchNorm statistics set from training
    images and a softmax head trained on their features -- fast, but such features
    carry the classes in tiny variations, so int8 noise hurts them far more than
    it hurts a trained network; use it for timing, not for drift.
    """
    import numpy as np

    from edgepose.data.splits import Sample, Splits, stratified_split
    from edgepose.keras_quiet import keras
    from edgepose.rundir import load_inputs
    from edgepose.runtime.preprocess import ImagePreprocessing
    from tests.digit_images import write_digit_images
    from tests.run_fixtures import save_run

    data = root / "data"
    paths, labels, classes = write_digit_images(data, per_class, size=size)
    assignment = stratified_split(labels, (0.6, 0.15, 0.25), seed=0)
    splits = Splits("image", str(data), classes,
                    [Sample(p, lab, s) for p, lab, s in zip(paths, labels, assignment,
                                                            strict=True)],
                    fractions=(0.6, 0.15, 0.25))
    config = {"task": "image", "preprocessing": ImagePreprocessing(size, size).to_dict(),
              "backbone": backbone, "epochs": epochs, "training": training}
    x, y = load_inputs(splits, splits.samples("train"), config)
    x = x.astype(np.float32)
    keras.utils.set_random_seed(0)
    base, needs_rescaling = _backbone(backbone, size)
    inputs = keras.Input((size, size, 3))
    x_in = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs) if needs_rescaling else inputs
    if training == "full":
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = 0.9
        outputs = keras.layers.Dense(len(classes), activation="softmax",
                                     name="probabilities")(base(x_in))
        model = keras.Model(inputs, outputs)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
        return save_run(root / "run", model, classes, splits, config, {})
    features = keras.Model(inputs, base(x_in))
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0  # moving statistics := statistics of this batch
    features(x[:64], training=True)
    f_train = features.predict(x, batch_size=32, verbose=0)
    mean, std = f_train.mean(0), f_train.std(0) + 1e-6
    head = keras.layers.Dense(len(classes), activation="softmax", name="probabilities")
    probe = keras.Sequential([keras.Input(f_train.shape[1:]), head])
    probe.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    probe.fit((f_train - mean) / std, y, epochs=epochs, batch_size=32, verbose=0)
    normalise = keras.layers.Normalization(mean=mean, variance=std ** 2, name="feature_norm")
    model = keras.Model(inputs, head(normalise(features.output)))
    return save_run(root / "run", model, classes, splits, config, {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="mobilenetv2,mobilenetv3small,efficientnetb0")
    parser.add_argument("--sizes", default="224,96")
    parser.add_argument("--modes", default="fp32,fp16,dynamic,int8,int16x8")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--training", choices=["full", "probe"], default="full")
    parser.add_argument("--append", action="store_true",
                        help="keep the recorded rows of other backbone x size pairs")
    args = parser.parse_args()

    from edgepose.bench.device import machine_slug
    from edgepose.converters import convert_run

    results = {"machine": machine_slug(), "per_class": args.per_class, "epochs": args.epochs,
               "training": args.training, "rows": []}
    recorded = results_dir(machine=results["machine"]) / "convert_matrix.json"
    if args.append and recorded.is_file():
        previous = json.loads(recorded.read_text())
        if (previous["per_class"], previous["epochs"], previous["training"]) != (
                args.per_class, args.epochs, args.training):
            raise SystemExit(f"{recorded}: recorded with other settings; run without --append")
        wanted = {(b, int(z)) for b in args.backbones.split(",") for z in args.sizes.split(",")}
        results["rows"] = [r for r in previous["rows"] if (r["backbone"], r["size"]) not in wanted]
    for backbone in args.backbones.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            with tempfile.TemporaryDirectory(prefix=f"matrix-{backbone}-{size}-") as tmp:
                start = time.perf_counter()
                run = build_run(Path(tmp), backbone, size, args.per_class, args.epochs,
                                args.training)
                train_seconds = time.perf_counter() - start
                report = convert_run(run, args.modes.split(","))
                for m in report.modes:
                    row = {"backbone": backbone, "size": size, "mode": m.mode,
                           "train_seconds": round(train_seconds, 1),
                           "convert_seconds": m.conversion_seconds, "size_bytes": m.size_bytes,
                           "keras_accuracy": report.keras_accuracy,
                           "accuracy": m.drift.accuracy, "drop_pct": m.drop_pct,
                           "top1_agreement": m.drift.top1_agreement, "mean_kl": m.drift.mean_kl,
                           "latency_ms": m.latency_ms, "partitions": m.partitions,
                           "ops_outside": m.ops_outside}
                    results["rows"].append(row)
                    print(row, flush=True)
            # after every backbone x size, so a long run keeps what it measured
            out_dir = results_dir(machine=results["machine"])
            write_results(out_dir, "convert_matrix", results, to_markdown(results))
    print(to_markdown(results))


def to_markdown(results: dict) -> str:
    from edgepose.converters.conversion_report import format_points  # never -0.00

    lines = [f"# Conversion matrix ({results['machine']})", "",
             f"Digits demo data, {results['per_class']}/class; backbone weights=None, training "
             f"{results['training']!r} for {results['epochs']} epochs. "
             "Latency: median, 1 thread, XNNPACK.", "",
             "| backbone | px | mode | convert s | KB | accuracy | drop pts | top-1 agree | "
             "KL | ms | partitions |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(f"| {r['backbone']} | {r['size']} | {r['mode']} | {r['convert_seconds']} "
                     f"| {r['size_bytes'] / 1024:.0f} | {100 * r['accuracy']:.1f}% | "
                     f"{format_points(r['drop_pct'])} | {100 * r['top1_agreement']:.1f}% | "
                     f"{r['mean_kl']:.4f} | {r['latency_ms']:.2f} | {r['partitions']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
