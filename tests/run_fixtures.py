"""Tiny, trained, real run directories built without the trainer (shared test fixtures).

``make_digits_run(root)`` writes ~300 real sklearn digits as 32x32 PNGs in class
folders, splits them with :func:`edgepose.data.splits.stratified_split`, trains a
small CNN (raw 0..255 RGB in, Rescaling in-graph, BatchNorm statistics learnt
from the data) and saves ``model.keras``, ``labels.txt``, ``splits.json``,
``config.json`` and ``metrics.json`` exactly as :mod:`edgepose.rundir` describes.
``make_keypoint_run(root)`` does the same for a tiny Dense model on coco17
keypoint JSON files.

The session fixtures ``digits_run`` / ``keypoint_run`` are registered in
``tests/conftest.py``; a test module only names them as arguments.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgepose.data.splits import Sample, Splits, stratified_split
from edgepose.fileio import write_json, write_text
from edgepose.runtime.preprocess import ImagePreprocessing
from tests.digit_images import write_digit_images

IMAGE_SIZE = 32


def _small_cnn(num_classes: int, size: int):
    import keras

    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.5)(x)
        x = keras.layers.ReLU(6.0)(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="digits_cnn")


def save_run(run: Path, model, classes: list[str], splits: Splits, config: dict,
             metrics: dict) -> Path:
    """Write a run directory (model.keras, labels, splits, config, metrics) as the trainer
    does; also used by benchmarks/convert_matrix.py."""
    run.mkdir(parents=True, exist_ok=True)
    model.save(run / "model.keras")
    write_text(run / "labels.txt", "\n".join(classes) + "\n")
    splits.save(run / "splits.json")
    write_json(run / "config.json", config)
    write_json(run / "metrics.json", metrics)
    write_text(run / "history.csv", "epoch\n")
    return run


def make_digits_run(root: str | Path, per_class: int = 30, epochs: int = 25,
                    seed: int = 0) -> Path:
    """A trained image run directory at ``root/run`` (data at ``root/data``)."""
    import keras

    from edgepose.rundir import load_inputs

    root = Path(root)
    data = root / "data"
    paths, labels, classes = write_digit_images(data, per_class, seed=seed)
    assignment = stratified_split(labels, (0.6, 0.15, 0.25), seed=seed)
    splits = Splits("image", str(data), classes,
                    [Sample(p, lab, s)
                     for p, lab, s in zip(paths, labels, assignment, strict=True)],
                    seed=seed, fractions=(0.6, 0.15, 0.25))
    spec = ImagePreprocessing(IMAGE_SIZE, IMAGE_SIZE)
    config = {"task": "image", "preprocessing": spec.to_dict(), "backbone": "small_cnn",
              "seed": seed, "epochs": epochs}
    x_train, y_train = load_inputs(splits, splits.samples("train"), config)
    x_test, y_test = load_inputs(splits, splits.samples("test"), config)
    keras.utils.set_random_seed(seed)
    model = _small_cnn(len(classes), IMAGE_SIZE)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train.astype(np.float32), y_train, epochs=epochs, batch_size=32, verbose=0)
    probs = model.predict(x_test.astype(np.float32), verbose=0)
    metrics = {"test_accuracy": float(np.mean(probs.argmax(1) == y_test))}
    return save_run(root / "run", model, classes, splits, config, metrics)


def write_keypoint_files(root: Path, per_class: int = 60, seed: int = 0
                         ) -> tuple[list[str], list[int], list[str]]:
    """Two classes of coco17 poses (arms up vs arms down), one JSON file each."""
    rng = np.random.default_rng(seed)
    classes = ["down", "up"]
    base = rng.uniform(0.3, 0.7, size=(17, 2))
    paths, labels = [], []
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pose = base + rng.normal(0, 0.03, size=base.shape)
            pose[9:11, 1] += -0.25 if label == 1 else 0.25  # wrists above / below
            rel = f"{name}/{i:03d}.json"
            (root / rel).write_text(json.dumps({"keypoints": pose.reshape(-1).round(5).tolist(),
                                                "label": label}))
            paths.append(rel)
            labels.append(label)
    return paths, labels, classes


def make_keypoint_run(root: str | Path, epochs: int = 30, seed: int = 0) -> Path:
    """A trained keypoint run directory (coco17, tiny Dense model) at ``root/run``."""
    import keras

    from edgepose.rundir import load_inputs

    root = Path(root)
    data = root / "data"
    paths, labels, classes = write_keypoint_files(data, seed=seed)
    assignment = stratified_split(labels, (0.6, 0.15, 0.25), seed=seed)
    splits = Splits("keypoints", str(data), classes,
                    [Sample(p, lab, s)
                     for p, lab, s in zip(paths, labels, assignment, strict=True)],
                    seed=seed, fractions=(0.6, 0.15, 0.25), extra={"keypoint_layout": "coco17"})
    config = {"task": "keypoints", "keypoint_layout": "coco17", "seed": seed}
    x_train, y_train = load_inputs(splits, splits.samples("train"), config)
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((x_train.shape[1],), name="keypoints")
    x = keras.layers.Dense(32, activation="relu")(inputs)
    x = keras.layers.Dense(16, activation="relu")(x)
    outputs = keras.layers.Dense(len(classes), activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="pose_mlp")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=epochs, batch_size=16, verbose=0)
    return save_run(root / "run", model, classes, splits, config, {})


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """A trained digits image run directory (session-wide; copy it before modifying)."""
    return make_digits_run(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def keypoint_run(tmp_path_factory) -> Path:
    """A trained coco17 keypoint run directory (session-wide; copy it before modifying)."""
    return make_keypoint_run(tmp_path_factory.mktemp("poses"))


def copy_split(splits: Splits, split: str, dest: Path) -> Path:
    """Copy the files of one split of a run into ``dest`` (same relative paths, so
    class folders stay); returns ``dest``. The held-out checks' "the run's own images"."""
    import shutil

    for sample in splits.samples(split):
        target = dest / sample.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(splits.absolute(sample), target)
    return dest


def copy_renamed(dataset: Path, dest: Path, pattern: str = "*.png") -> Path:
    """Copy every ``pattern`` file of a class-folder ``dataset`` into ``dest`` under another
    name (``renamed_<name>``, same class folder); returns ``dest``. The same bytes under
    new paths: what a check by content (not by path) must still recognise."""
    import shutil

    for path in dataset.rglob(pattern):
        target = dest / path.parent.name / f"renamed_{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return dest


def ruined_int8_copy(digits_run: Path, run: Path) -> Path:
    """A copy of ``digits_run`` at ``run`` whose model has the same float function but
    hopeless per-channel int8 weights (the one owner of this construction).

    The last conv's channel 0 is made dead (always 0 after ReLU) and the classifier's
    weights from it set to 1000: float outputs do not change, but the int8 weight scale
    of every class becomes ~8 and every real weight rounds to zero, so int8 loses far
    more than any drift budget.
    """
    import shutil

    import keras

    shutil.copytree(digits_run, run)
    model = keras.models.load_model(run / "model.keras")
    conv = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    kernel, bias = conv.get_weights()
    kernel[..., 0], bias[0] = 0.0, -10.0
    conv.set_weights([kernel, bias])
    dense = model.get_layer("probabilities")
    weights, dense_bias = dense.get_weights()
    weights[0, :] = 1000.0
    dense.set_weights([weights, dense_bias])
    model.save(run / "model.keras")
    return run
