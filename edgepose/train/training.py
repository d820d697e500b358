"""The fit loop shared by the image and keypoint trainers.

- :func:`make_batches` feeds batches: a ``tf.data`` pipeline for in-memory arrays, a
  :class:`BatchSequence` that loads each batch for datasets too big for memory;
- :func:`seed_everything` and :func:`make_strategy` set up a reproducible run;
- :func:`fit_stages` compiles and fits a model through one or more stages
  (feature extraction, then fine-tuning) with EarlyStopping, a best-model
  checkpoint, TensorBoard and a live CSV log in the run directory;
- :func:`unfreeze_backbone` picks the layers stage 2 trains.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.bench.device import cpu_id, cpu_model
from edgepose.errors import ConfigError
from edgepose.keras_quiet import keras, tf

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


class BatchSequence(keras.utils.PyDataset):
    """``(x float32, y, sample_weight)`` batches, reshuffled each epoch with a fixed seed.

    ``inputs`` is an in-memory array (N x ...) or a callable ``load(indices) -> array``
    that reads just one batch, for datasets too big for memory.
    """

    def __init__(self, inputs: np.ndarray | Callable[[np.ndarray], np.ndarray],
                 labels: np.ndarray, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 class_weight: dict[int, float] | None = None):
        super().__init__()
        self.inputs = inputs
        self.labels = np.asarray(labels, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(self.labels))
        if shuffle:
            self._rng.shuffle(self._order)
        weights = np.ones(max(int(self.labels.max(initial=0)) + 1, 1), dtype=np.float32)
        for label, weight in (class_weight or {}).items():
            if label < len(weights):
                weights[label] = weight
        self._sample_weights = weights[self.labels]

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, index: int):
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        x = self.inputs(idx) if callable(self.inputs) else self.inputs[idx]
        return (np.asarray(x, dtype=np.float32), self.labels[idx], self._sample_weights[idx])

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._rng.shuffle(self._order)


@dataclass
class Batches:
    """What ``fit`` iterates (a ``tf.data.Dataset`` or a :class:`BatchSequence`) and how
    many samples one pass holds."""

    data: tf.data.Dataset | BatchSequence
    samples: int


def make_batches(inputs: np.ndarray | Callable[[np.ndarray], np.ndarray], labels: np.ndarray,
                 batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 class_weight: dict[int, float] | None = None) -> Batches:
    """``(x float32, y[, sample_weight])`` batches for ``fit``, the fastest way available.

    An in-memory array becomes a ``tf.data`` pipeline: the uint8 images stay uint8 in
    memory, are shuffled with ``seed`` (a new, reproducible order each epoch), batched,
    cast to float32 inside the graph and prefetched, so no Python runs per batch. (Measured
    on 2 shared cores, MobileNetV3-Small 96 px: a Python generator per batch trained at
    0.63x a plain Keras ``fit`` on the same arrays while other processes kept the load
    near 9, this pipeline at 0.87x; at load 3 both were within 4% of plain fit. See
    benchmarks/train_throughput.py ``--vs-fit``.) A per-batch loader (datasets too big
    for memory) stays a :class:`BatchSequence`. Sample weights are passed only when
    ``class_weight`` makes them differ from 1.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if callable(inputs):
        return Batches(BatchSequence(inputs, labels, batch_size, shuffle=shuffle, seed=seed,
                                     class_weight=class_weight), len(labels))
    per_class = np.ones(max(int(labels.max(initial=0)) + 1, 1), dtype=np.float32)
    for label, weight in (class_weight or {}).items():
        if label < len(per_class):
            per_class[label] = weight
    weights = per_class[labels]
    columns = (inputs, labels) if np.all(weights == 1.0) else (inputs, labels, weights)
    data = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle:
        data = data.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(int(batch_size)).map(
        lambda x, *rest: (tf.cast(x, tf.float32), *rest), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True)
    return Batches(data.prefetch(tf.data.AUTOTUNE), len(labels))


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow; make TF ops deterministic when asked.

    On CPU op determinism costs little (the benchmark measures it); it stays on
    for the rest of the process, as TensorFlow offers no public way back.
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def reproducibility(deterministic: bool) -> dict[str, object]:
    """What else a seeded run's exact numbers depend on, for config.json.

    Measured (two seeded runs on one machine give identical weights, see
    tests/test_train_determinism.py): the same run with TensorFlow's CPU thread pool
    on 1 core instead of 2, or with oneDNN off, differs in the last float bits after
    the first steps, and those differences grow over epochs into a different final
    accuracy. So results reproduce bit for bit only with the same core count, CPU
    instruction set (oneDNN picks kernels by it) and library versions.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"deterministic_ops": deterministic, "cpu_cores": cores,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or cores,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0",
            "cpu": cpu_model(),
            # the model name can hide the silicon (a VM's "AMD EPYC"); the ISA picks kernels
            "cpu_id": cpu_id()}


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """``default``: one device. ``mirrored``: MirroredStrategy over every visible GPU
    (falls back to the default strategy with fewer than two GPUs).

    Raises:
        ConfigError: an unknown strategy ``name``.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if len(gpus) < 2:
            return tf.distribute.get_strategy()
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    raise ConfigError(f"unknown strategy {name!r}; expected default or mirrored")


@dataclass
class Stage:
    """One fit: how long, how fast, and what to change on the model before it starts."""

    name: str
    epochs: int
    lr: float
    prepare: Callable[[], None] | None = None  # e.g. unfreeze part of the backbone
    schedule: str = "constant"  # constant | cosine (hyperparameters.LR_SCHEDULES)


@dataclass
class TrainingHistory:
    """Per-epoch records of all stages, and how the fit went."""

    rows: list[dict] = field(default_factory=list)  # stage, epoch, lr, loss, accuracy, val_*
    seconds: float = 0.0  # wall time of every fit: tracing, training, validation, callbacks
    train_samples_seen: int = 0
    stopped_early: dict[str, bool] = field(default_factory=dict)
    # epochs without their validation pass (checkpoint and logging callbacks included),
    # the first epoch of a stage (graph tracing) left out when the stage ran more than one:
    # the figure a plain Keras fit is compared with (benchmarks/train_throughput.py --vs-fit)
    steady_seconds: float = 0.0
    steady_samples: int = 0

    @property
    def epochs(self) -> int:
        return len(self.rows)

    @property
    def images_per_second(self) -> float:
        """Training throughput in samples/s over the steady epochs (see ``steady_seconds``)."""
        if self.steady_seconds:
            return self.steady_samples / self.steady_seconds
        return self.train_samples_seen / self.seconds if self.seconds else 0.0

    def best(self, key: str = "val_loss") -> dict | None:
        rows = [r for r in self.rows if r.get(key) is not None]
        if not rows:
            return None
        pick = min if "loss" in key else max
        return pick(rows, key=lambda r: r[key])


class EpochTimer(keras.callbacks.Callback):
    """Seconds each epoch spent training, validation (``on_test_*``) subtracted."""

    def __init__(self) -> None:
        super().__init__()
        self.train_seconds: list[float] = []
        self._epoch = self._test = 0.0
        self._test_started = 0.0

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._epoch, self._test = time.perf_counter(), 0.0

    def on_test_begin(self, logs=None) -> None:
        self._test_started = time.perf_counter()

    def on_test_end(self, logs=None) -> None:
        self._test += time.perf_counter() - self._test_started

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.train_seconds.append(time.perf_counter() - self._epoch - self._test)


class EarlyStoppingAboveChance(keras.callbacks.EarlyStopping):
    """EarlyStopping on ``val_loss`` that restores the best epoch's weights only when that
    epoch's validation accuracy is above chance, or no later epoch did better.

    On small data the lowest validation loss can come in the first epoch, while the model
    still answers the majority class (validation accuracy at chance); plain EarlyStopping
    then hands back weights that learned nothing, although later epochs did (issue 13:
    56 training samples ended at 50%). ``chance_limit`` is the validation accuracy at or
    below which an epoch counts as guessing (:func:`edgepose.train.chance.chance_limit`).
    """

    def __init__(self, chance_limit: float | None, **kwargs):
        super().__init__(restore_best_weights=True, **kwargs)
        self.chance_limit = chance_limit
        self.best_accuracy: float | None = None
        self.last_accuracy: float | None = None
        self.kept_last = False  # True when the at-chance "best" epoch was not restored

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch, logs)
        accuracy = (logs or {}).get("val_accuracy")
        self.last_accuracy = None if accuracy is None else float(accuracy)
        if self.best_epoch == epoch:
            self.best_accuracy = self.last_accuracy

    def on_train_end(self, logs: dict | None = None) -> None:
        if (self.chance_limit is not None and self.best_accuracy is not None
                and self.last_accuracy is not None
                and self.best_accuracy <= self.chance_limit < self.last_accuracy):
            self.best_weights = None  # keep the last weights: they are above chance
            self.kept_last = True
        super().on_train_end(logs)


def make_callbacks(run_dir: Path, stage: str, patience: int, has_val: bool,
                   chance_limit: float | None = None) -> list[keras.callbacks.Callback]:
    """EarlyStopping (restores the best weights, unless they are at chance: see
    :class:`EarlyStoppingAboveChance`), best checkpoint, TensorBoard, live CSV.

    Files go under ``run_dir/checkpoints`` and ``run_dir/logs``. TensorBoard logs
    are skipped when the tensorboard package is missing (tensorflow-cpu lacks it).
    """
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    monitor = "val_loss" if has_val else "loss"
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.ModelCheckpoint(str(run_dir / "checkpoints" / f"best_{stage}.weights.h5"),
                                        monitor=monitor, save_best_only=True,
                                        save_weights_only=True),
        keras.callbacks.CSVLogger(str(logs / "training_log.csv"), append=True),
    ]
    if importlib.util.find_spec("tensorboard") is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(logs / "tensorboard" / stage)))
    if patience > 0:
        callbacks.insert(0, EarlyStoppingAboveChance(
            chance_limit if has_val else None, monitor=monitor, patience=patience))
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    return callbacks


def learning_rate(lr: float, schedule: str = "constant", steps: int = 0
                  ) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The optimizer's learning rate: ``lr`` itself, or ``lr`` decayed to 0 along half a
    cosine over ``steps`` optimizer steps (``"cosine"``; Keras ``CosineDecay``, after
    Loshchilov & Hutter 2017). Raises ConfigError for an unknown schedule or a cosine
    schedule without steps."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        if steps < 1:
            raise ConfigError("a cosine learning-rate schedule needs at least one step")
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps, alpha=0.0)
    raise ConfigError(f"unknown learning-rate schedule {schedule!r}; expected constant or cosine")


def steps_per_epoch(batches: Batches) -> int:
    """Optimizer steps in one pass over ``batches`` (batches per epoch)."""
    if isinstance(batches.data, BatchSequence):
        return len(batches.data)
    return int(batches.data.cardinality())


def compile_model(model: keras.Model, lr: float, schedule: str = "constant",
                  steps: int = 0) -> None:
    """Adam + sparse categorical cross-entropy on softmax outputs, accuracy metric.

    ``schedule``/``steps``: see :func:`learning_rate` (``steps``: the whole stage's)."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate(lr, schedule,
                                                                              steps)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def fit_stages(model: keras.Model, train: Batches | BatchSequence,
               val: Batches | BatchSequence | None, stages: Sequence[Stage],
               run_dir: str | Path, *, patience: int = 5,
               strategy: tf.distribute.Strategy | None = None, verbose: int = 1,
               extra_callbacks: Sequence[keras.callbacks.Callback] = (),
               progress: Callable[[Stage, int, int], keras.callbacks.Callback] | None = None,
               chance_limit: float | None = None) -> TrainingHistory:
    """Fit ``model`` through ``stages`` in order, recompiling at each stage's learning rate
    (and schedule: a cosine decays over that stage's epochs).

    Epoch numbers continue across stages. ``extra_callbacks`` run before the standard
    ones (e.g. BatchNorm re-estimation before each validation). ``progress(stage,
    first_epoch, samples)``, when given, returns a callback that reports the stage's
    epochs (see :mod:`edgepose.train.progress`). ``chance_limit``: the validation
    accuracy at or below which EarlyStopping does not restore a "best" epoch
    (:class:`EarlyStoppingAboveChance`). Returns every epoch's metrics.
    """
    run_dir = Path(run_dir)
    if isinstance(train, BatchSequence):
        train = Batches(train, len(train.labels))
    if isinstance(val, BatchSequence):
        val = Batches(val, len(val.labels))
    history = TrainingHistory()
    start_epoch = 0
    for stage in stages:
        if stage.epochs <= 0:
            continue
        if stage.prepare is not None:
            stage.prepare()
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            compile_model(model, stage.lr, stage.schedule,
                          stage.epochs * steps_per_epoch(train))
        callbacks = [*extra_callbacks,
                     *make_callbacks(run_dir, stage.name, patience, val is not None,
                                     chance_limit)]
        if progress is not None:
            callbacks.append(progress(stage, start_epoch, train.samples))
        timer = EpochTimer()  # last: the other callbacks' epoch-end work counts as training
        callbacks.append(timer)
        started = time.perf_counter()
        fit = model.fit(train.data, validation_data=val.data if val is not None else None,
                        epochs=start_epoch + stage.epochs, initial_epoch=start_epoch,
                        callbacks=callbacks, verbose=verbose,
                        shuffle=False)  # make_batches shuffles, seeded
        history.seconds += time.perf_counter() - started
        ran = len(fit.history.get("loss", []))
        history.train_samples_seen += ran * train.samples
        steady = timer.train_seconds[1:] or timer.train_seconds
        history.steady_seconds += sum(steady)
        history.steady_samples += len(steady) * train.samples
        history.stopped_early[stage.name] = ran < stage.epochs
        for i in range(ran):
            row = {"stage": stage.name, "epoch": start_epoch + i + 1, "lr": stage.lr}
            for key in HISTORY_KEYS:
                values = fit.history.get(key)
                row[key] = float(values[i]) if values is not None and i < len(values) else None
            history.rows.append(row)
        start_epoch += ran
    return history


def unfreeze_backbone(backbone: keras.Model, *, top: int | None = None,
                      from_index: int | None = None) -> list[str]:
    """Make the top ``top`` layers (or every layer from index ``from_index``) trainable.

    With neither, the whole backbone is unfrozen. BatchNormalization layers stay
    frozen: a Keras 3 BatchNorm with ``trainable=False`` normalises with its moving
    statistics even in training mode, so fine-tuning does not wreck their ImageNet
    statistics. (The ``training=False`` the backbone is wired with does not do this:
    Keras 3 passes the outer call's ``training`` to nested models.)
    Returns the names of the layers that became trainable.

    Raises:
        ConfigError: ``from_index`` is beyond the backbone's layers.
    """
    layers = backbone.layers
    if top is not None:
        start = max(len(layers) - top, 0)
    elif from_index is not None:
        if from_index > len(layers):
            raise ConfigError(f"--freeze-until {from_index} is beyond the {len(layers)} layers "
                              f"of {backbone.name}")
        start = from_index
    else:
        start = 0
    backbone.trainable = True
    unfrozen = []
    for index, layer in enumerate(layers):
        train_it = index >= start and not isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = train_it
        if train_it and layer.weights:
            unfrozen.append(layer.name)
    return unfrozen
