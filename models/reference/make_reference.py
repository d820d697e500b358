"""Rebuild the committed reference model: ``digits3_int8.tflite`` + its manifest + samples.

A tiny, real, trained classifier (6 KB) that the fresh-install test
(``tests/test_edgepose_install_wheel.py``) runs with ``edgepose predict`` and
``edgepose bench`` in a virtual environment without TensorFlow, so the device
install is tested on a model made by edgepose's own pipeline.

What it does (seeded; about 30 s on 2 cores; needs the ``train`` extra)::

    python models/reference/make_reference.py

1. takes scikit-learn's real handwritten digits 0, 1 and 2 (the 8x8 originals
   upscaled to 16x16 RGB PNGs, bilinear), split 60/15/25 with
   :func:`edgepose.data.splits.stratified_split`;
2. trains a small CNN (raw 0..255 RGB in, rescaled in the graph) for 30 epochs;
3. converts it with :func:`edgepose.converters.convert_run` to full-integer int8 with
   int8 input/output (calibrated on the train split, drift measured on test);
4. writes ``digits3_int8.tflite`` and ``digits3_int8.json`` (the manifest) next
   to this script. No images are committed: the tests write real digits with the
   same writer (``tests/digit_images.py``, via ``tests/reference_model.py``).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout without installing

from edgepose.data.splits import Sample, Splits, stratified_split  # noqa: E402
from edgepose.fileio import read_json, write_json, write_text  # noqa: E402
from edgepose.runtime.preprocess import ImagePreprocessing  # noqa: E402
from tests.digit_images import write_digit_images  # noqa: E402

SIZE = 16
CLASSES = ["zero", "one", "two"]
PER_CLASS = 60
SEED = 0
FRACTIONS = (0.6, 0.15, 0.25)
STEM = "digits3"


def write_images(root: Path) -> tuple[list[str], list[int]]:
    """``PER_CLASS`` real digits per class as 16x16 RGB PNGs under ``root/<class>/``."""
    paths, labels, _ = write_digit_images(root, PER_CLASS, SIZE, SEED, CLASSES)
    return paths, labels


def tiny_cnn():
    """About 1,500 parameters: two conv blocks, global pooling, softmax."""
    import keras

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    for filters in (8, 16):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(CLASSES), activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="digits3_cnn")


def build(out: Path = HERE) -> list[Path]:
    """Train, convert and write the reference files into ``out``; returns their paths."""
    from edgepose.quiet import import_tensorflow

    import_tensorflow()
    import keras

    from edgepose.converters import convert_run
    from edgepose.rundir import load_inputs

    with tempfile.TemporaryDirectory() as tmp:
        data, run = Path(tmp) / "data", Path(tmp) / "run"
        paths, labels = write_images(data)
        assignment = stratified_split(labels, FRACTIONS, seed=SEED)
        splits = Splits("image", str(data), CLASSES,
                        [Sample(p, y, s) for p, y, s in zip(paths, labels, assignment,
                                                             strict=True)],
                        seed=SEED, fractions=FRACTIONS)
        config = {"task": "image", "preprocessing": ImagePreprocessing(SIZE, SIZE).to_dict(),
                  "backbone": "tiny_cnn", "seed": SEED, "epochs": 30}
        x_train, y_train = load_inputs(splits, splits.samples("train"), config)
        keras.utils.set_random_seed(SEED)
        model = tiny_cnn()
        model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x_train.astype(np.float32), y_train, epochs=30, batch_size=16, verbose=0)
        run.mkdir()
        model.save(run / f"{STEM}.keras")
        write_text(run / "labels.txt", "\n".join(CLASSES) + "\n")
        splits.save(run / "splits.json")
        write_json(run / "config.json", config)
        write_json(run / "metrics.json", {})
        report = convert_run(run / f"{STEM}.keras", ["int8"], io="int8", seed=SEED)
        written = [out / f"{STEM}_int8.tflite", out / f"{STEM}_int8.json"]
        shutil.copyfile(run / written[0].name, written[0])
        manifest = read_json(run / written[1].name)
        # The Keras file lived in a temporary folder: say where it comes from instead.
        manifest["source_model"] = f"{STEM}.keras (rebuilt by models/reference/make_reference.py)"
        write_json(written[1], manifest)
    drift = report.modes[0].drift
    print(f"Keras test accuracy {report.keras_accuracy}, int8 {drift.accuracy if drift else None};"
          f" wrote {len(written)} files under {out}")
    return written


if __name__ == "__main__":
    build()
