"""Training throughput (images/s) of every registered backbone at 224 and 160 px.

Measures the two things `edgepose train image` spends its time on: stage 1
(frozen backbone, head trained: ``frozen``) and stage 2 (whole backbone
unfrozen, BatchNorm in inference mode: ``fine_tune``). Each case builds the
real model (weights none: throughput does not depend on the values), runs one
warm-up batch (graph tracing) and times ``--batches`` further train steps on
real images (scikit-image's astronaut, coffee and chelsea, resized).

Writes ``benchmarks/results/<machine>/train_throughput.json`` and ``.md``.
Run standalone: ``.venv/bin/python benchmarks/train_throughput.py [--batches 3]``.

``--vs-fit`` instead compares, per backbone at 96 and 224 px (trained from
scratch), edgepose's own training path (:func:`edgepose.train.training.fit_stages`
on :func:`~edgepose.train.training.make_batches`, with its callbacks, class
weights and validation) with a plain Keras ``fit`` of the same model on the same
arrays, interleaved in one process, and writes ``train_vs_fit.json`` / ``.md``
with the ratios and the load average they were measured under (issue 14 goal 4:
edgepose >= 0.9x plain fit).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
from benchmark_utils import machine_facts, results_dir  # the one path set-up

from edgepose.fileio import write_json, write_text  # noqa: E402


@dataclass
class ThroughputCase:
    backbone: str
    input_size: int
    stage: str  # frozen | fine_tune
    batch_size: int
    batches: int
    seconds: float
    images_per_second: float
    trainable_weights: int


def _images(size: int, count: int) -> np.ndarray:
    from skimage import data

    from edgepose.runtime.preprocess import ImagePreprocessing, image_to_array

    spec = ImagePreprocessing(size, size)
    sources = [data.astronaut(), data.coffee(), data.chelsea()]
    return np.stack([image_to_array(sources[i % 3], spec) for i in range(count)])


def measure(backbone: str, size: int, stage: str, batch_size: int, batches: int
            ) -> ThroughputCase:
    from edgepose.keras_quiet import keras
    from edgepose.train.hyperparameters import ImageModelParams
    from edgepose.train.image_classifier import build_image_model
    from edgepose.train.training import compile_model, unfreeze_backbone

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    # weights "none" would train the backbone from scratch; mimic the pretrained
    # model's frozen stage 1 by freezing it by hand.
    model = build_image_model(3, ImageModelParams(backbone=backbone, input_size=size,
                                                  weights="none", augment="light"))
    model.backbone.trainable = False
    if stage == "fine_tune":
        unfreeze_backbone(model.backbone)
    compile_model(model.training, 1e-4)
    x = _images(size, batch_size).astype("float32")
    y = np.arange(batch_size) % 3
    model.training.train_on_batch(x, y)  # warm-up: tracing and first allocation
    started = time.perf_counter()
    for _ in range(batches):
        model.training.train_on_batch(x, y)
    seconds = time.perf_counter() - started
    return ThroughputCase(backbone, size, stage, batch_size, batches, round(seconds, 3),
                          round(batches * batch_size / seconds, 2),
                          len(model.training.trainable_weights))


@dataclass
class VersusFitCase:
    """edgepose's training path vs a plain Keras ``fit`` of the same model on the same arrays.

    ``*_steady`` figures: images/s of the training passes after the first epoch of a
    fit call (tracing excluded, edgepose's validation excluded), median over rounds.
    ``*_wall``: training images/s over each whole fit call (tracing, validation,
    callbacks); both sides validate the same arrays each epoch.
    """

    backbone: str
    input_size: int
    batch_size: int
    train_images: int
    val_images: int
    rounds: int
    plain_steady: float
    edgepose_steady: float
    steady_ratio: float
    plain_wall: float
    edgepose_wall: float
    wall_ratio: float


def versus_fit(backbone: str, size: int, batch_size: int, batches: int, rounds: int,
               augment: str = "none") -> VersusFitCase:
    """Interleave plain ``fit`` and edgepose's ``fit_stages`` (its real callbacks, tf.data
    input, class weights and validation), two epochs each, ``rounds`` times."""
    import tempfile

    from edgepose.keras_quiet import keras
    from edgepose.train.hyperparameters import ImageModelParams
    from edgepose.train.image_classifier import build_image_model
    from edgepose.train.training import (
        EpochTimer,
        Stage,
        compile_model,
        fit_stages,
        make_batches,
    )

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_image_model(3, ImageModelParams(backbone=backbone, input_size=size,
                                                  weights="none", augment=augment)).training
    n = batch_size * batches
    x = _images(size, n)  # uint8, as edgepose keeps decoded images in memory
    y = np.arange(n) % 3
    x_val, y_val = x[: max(n // 4, 1)], y[: max(n // 4, 1)]
    x_float = x.astype("float32")  # what a plain Keras user hands to fit
    x_val_float = x_val.astype("float32")
    weights = {0: 1.0, 1: 1.1, 2: 0.9}  # a slightly unbalanced set: sample weights on
    plain_steady, plain_wall, edge_steady, edge_wall = [], [], [], []
    with tempfile.TemporaryDirectory() as run_dir:
        for _ in range(rounds):
            compile_model(model, 1e-3)
            timer = EpochTimer()
            started = time.perf_counter()
            # the same validation pass each epoch as edgepose's, so the wall figures
            # compare like with like (only edgepose's pipeline and callbacks differ)
            model.fit(x_float, y, batch_size=batch_size, epochs=2, shuffle=True, verbose=0,
                      callbacks=[timer], validation_data=(x_val_float, y_val))
            plain_wall.append(2 * n / (time.perf_counter() - started))
            plain_steady.append(n / timer.train_seconds[1])
            history = fit_stages(
                model, make_batches(x, y, batch_size, shuffle=True, seed=0,
                                    class_weight=weights),
                make_batches(x_val, y_val, batch_size), [Stage("train", 2, 1e-3)], run_dir,
                patience=5, verbose=0)
            edge_wall.append(history.train_samples_seen / history.seconds)
            edge_steady.append(history.images_per_second)
    steady = (float(np.median(plain_steady)), float(np.median(edge_steady)))
    wall = (float(np.median(plain_wall)), float(np.median(edge_wall)))
    return VersusFitCase(backbone, size, batch_size, n, len(y_val), rounds,
                         round(steady[0], 2), round(steady[1], 2),
                         round(steady[1] / steady[0], 3), round(wall[0], 2), round(wall[1], 2),
                         round(wall[1] / wall[0], 3))


def versus_fit_report(cases: list[VersusFitCase], slug: str, settings: dict) -> str:
    """The ratio table as Markdown, with the load averages the figures were taken under."""
    lines = [f"# edgepose training vs plain Keras fit on {slug}", "",
             f"Same model, batch {settings['batch_size']}, same in-memory arrays; plain fit "
             "gets float32 arrays, edgepose its uint8 tf.data pipeline, class weights, "
             "checkpoint/CSV/TensorBoard callbacks; both validate the same held-out "
             "quarter each epoch. "
             f"{settings['rounds']} interleaved rounds of 2 epochs, medians. "
             f"Op determinism {'on' if settings['deterministic'] else 'off'} for both. "
             f"Load average (1 min) {settings['load_before']:.1f} before, "
             f"{settings['load_after']:.1f} after, on {os.cpu_count()} CPUs: absolute "
             "images/s are not final, the ratios are the result; on a shared machine a "
             "single ratio still moves by tens of percent between runs (a ratio above 1 "
             "says only \"no slower\"). Epochs here are short, so per-epoch costs "
             "(checkpoint, logs) weigh more than in a real run.", "",
             "Steady: training passes after the first epoch (validation excluded). "
             "Wall: whole fit calls (graph tracing, validation, callbacks included).", "",
             "| backbone | size | plain fit img/s | edgepose img/s | steady ratio | "
             "wall ratio |", "|---|---|---|---|---|---|"]
    lines += [f"| {c.backbone} | {c.input_size} | {c.plain_steady:.1f} | "
              f"{c.edgepose_steady:.1f} | {c.steady_ratio:.2f} | {c.wall_ratio:.2f} |"
              for c in cases]
    return "\n".join(lines) + "\n"


def main_versus_fit(args: argparse.Namespace) -> int:
    from edgepose.keras_quiet import keras, tf
    from edgepose.train.training import seed_everything

    seed_everything(0, deterministic=not args.no_deterministic)
    slug, machine = machine_facts("tensorflow")
    load_before = os.getloadavg()[0]
    cases = []
    for size in (int(s) for s in args.sizes.split(",")):  # every backbone at 96 first
        for name in args.backbones.split(","):
            case = versus_fit(name, size, args.batch_size, args.batches, args.rounds)
            print(f"{name:20s} {size:4d}px plain {case.plain_steady:8.2f} edgepose "
                  f"{case.edgepose_steady:8.2f} img/s  steady {case.steady_ratio:.2f} "
                  f"wall {case.wall_ratio:.2f}", flush=True)
            cases.append(case)
            # written after every case: a long matrix interrupted keeps what it measured
            settings = {"batch_size": args.batch_size, "batches": args.batches,
                        "rounds": args.rounds, "deterministic": not args.no_deterministic,
                        "load_before": load_before, "load_after": os.getloadavg()[0],
                        "cpus": os.cpu_count(), "tensorflow": tf.__version__,
                        "keras": keras.__version__}
            out = results_dir(args.out, slug)
            write_json(out / "train_vs_fit.json", {
                "benchmark": "train_vs_fit", "machine": slug, "device": machine,
                "settings": settings, "recorded": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "cases": cases})
            write_text(out / "train_vs_fit.md", versus_fit_report(cases, slug, settings))
    print(f"wrote {out / 'train_vs_fit.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from edgepose.train.model_spec import BACKBONES
    from edgepose.train.training import seed_everything

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=3, help="timed batches per case")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--sizes", default="224,160")
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--stages", default="frozen,fine_tune")
    parser.add_argument("--no-deterministic", action="store_true",
                        help="leave TF op determinism off (the trainer turns it on)")
    parser.add_argument("--out", default=None, help="results folder [benchmarks/results/<machine>]")
    parser.add_argument("--vs-fit", action="store_true",
                        help="compare edgepose's training path with a plain Keras fit "
                             "(ratios; sizes default to 96,224)")
    parser.add_argument("--rounds", type=int, default=2, help="--vs-fit: interleaved rounds")
    args = parser.parse_args(argv)
    if args.vs_fit:
        if args.sizes == "224,160":
            args.sizes = "96,224"
        if args.batch_size == 16:
            args.batch_size = 32  # the trainer's default batch
        return main_versus_fit(args)

    from edgepose.keras_quiet import keras, tf

    seed_everything(0, deterministic=not args.no_deterministic)
    slug, machine = machine_facts("tensorflow")
    cases = []
    for name in args.backbones.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            for stage in args.stages.split(","):
                case = measure(name, size, stage, args.batch_size, args.batches)
                print(f"{name:20s} {size:4d}px {stage:10s} {case.images_per_second:8.2f} img/s",
                      flush=True)
                cases.append(case)
    out = results_dir(args.out, slug)
    record = {"benchmark": "train_throughput", "machine": slug, "device": machine,
              "settings": {"batch_size": args.batch_size, "batches": args.batches,
                           "deterministic": not args.no_deterministic,
                           "threads": tf.config.threading.get_intra_op_parallelism_threads()
                           or os.cpu_count(),
                           "tensorflow": tf.__version__, "keras": keras.__version__},
              "recorded": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "cases": cases}
    write_json(out / "train_throughput.json", record)
    lines = [f"# Training throughput on {slug}", "",
             f"batch {args.batch_size}, {args.batches} timed batches after one warm-up, "
             f"op determinism {'on' if not args.no_deterministic else 'off'}, "
             f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs. Images/s:", "",
             "| backbone | size | frozen backbone | fine-tune (all unfrozen) |",
             "|---|---|---|---|"]
    by_key = {(c.backbone, c.input_size, c.stage): c for c in cases}
    for name in args.backbones.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            cells = [f"{by_key[(name, size, s)].images_per_second:.1f}"
                     if (name, size, s) in by_key else "-" for s in ("frozen", "fine_tune")]
            lines.append(f"| {name} | {size} | {cells[0]} | {cells[1]} |")
    write_text(out / "train_throughput.md", "\n".join(lines) + "\n")
    print(f"wrote {out / 'train_throughput.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
