"""Training throughput (images/s) of every registered backbone at 224 and 160 px.

Measures the two things `edgepose train image` spends its time on: stage 1
(frozen backbone, head trained: ``frozen``) and stage 2 (whole backbone
unfrozen, BatchNorm in inference mode: ``fine_tune``). Each case builds the
real model (weights none: throughput does not depend on the values), runs one
warm-up batch (graph tracing) and times ``--batches`` further train steps on
real images (scikit-image's astronaut, coffee and chelsea, resized).

Writes ``benchmarks/results/<machine>/train_throughput.json`` and ``.md``.
Run standalone: ``.venv/bin/python benchmarks/train_throughput.py [--batches 3]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

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


def _machine() -> tuple[str, dict]:
    try:
        from edgepose.bench.device import device_info, machine_slug

        return machine_slug(), asdict(device_info("tensorflow"))
    except Exception:  # the bench package is optional for this script
        slug = f"{platform.machine().lower()}-{platform.processor() or 'cpu'}"
        return slug, {"machine": platform.machine(), "cpus": os.cpu_count()}


def _images(size: int, count: int) -> np.ndarray:
    from skimage import data

    from edgepose.runtime.preprocess import ImagePreprocessing, image_to_array

    spec = ImagePreprocessing(size, size)
    sources = [data.astronaut(), data.coffee(), data.chelsea()]
    return np.stack([image_to_array(sources[i % 3], spec) for i in range(count)])


def measure(backbone: str, size: int, stage: str, batch_size: int, batches: int
            ) -> ThroughputCase:
    import keras

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
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    seed_everything(0, deterministic=not args.no_deterministic)
    slug, machine = _machine()
    cases = []
    for name in args.backbones.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            for stage in args.stages.split(","):
                case = measure(name, size, stage, args.batch_size, args.batches)
                print(f"{name:20s} {size:4d}px {stage:10s} {case.images_per_second:8.2f} img/s",
                      flush=True)
                cases.append(case)
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / slug
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
