"""Progress of a training run, as it happens.

What edgepose learned about the data (classes, counts, skipped files, leaks,
class weights) is printed before the first epoch; then each epoch shows a rich
progress bar over its batches on a terminal, and ends with one line of metrics.
In a log (not a terminal) only the per-epoch lines are written, so ``make demo``
and CI logs show progress without control characters.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from edgepose.keras_quiet import keras
from edgepose.train.training import Stage

# Keras log key -> short name in the epoch line, in print order.
_METRICS = (("loss", "loss"), ("accuracy", "acc"), ("val_loss", "val_loss"),
            ("val_accuracy", "val_acc"))


def epoch_line(stage: str, epoch: int, epochs: int, logs: dict, seconds: float,
               samples: int) -> str:
    """``train epoch 2/5: loss 0.4123 acc 0.8810 val_loss 0.5012 val_acc 0.8500 (3.1 s,
    103 samples/s)``; ``epoch`` counts from 1 within the stage, ``seconds`` is the
    epoch's wall time (validation included; the first epoch's also holds graph tracing,
    so it shows no rate)."""
    metrics = " ".join(f"{short} {float(logs[key]):.4f}" for key, short in _METRICS
                       if logs.get(key) is not None)
    if epoch == 1:  # the first epoch of a stage also traces the graph
        rate = ", graph tracing included"
    else:
        rate = f", {samples / seconds:.0f} samples/s" if seconds > 0 else ""
    return f"{stage} epoch {epoch}/{epochs}: {metrics} ({seconds:.1f} s{rate})"


class EpochProgress(keras.callbacks.Callback):
    """One stage's epochs: a batch progress bar on a terminal, one line per epoch always."""

    def __init__(self, console: Console, stage: Stage, first_epoch: int, samples: int):
        super().__init__()
        self.console = console
        self.stage = stage
        self.first_epoch = first_epoch
        self.samples = samples
        self._bar: Progress | None = None
        self._task = None
        self._started = 0.0

    def on_train_begin(self, logs=None) -> None:
        if self.console.is_terminal:
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TimeRemainingColumn(), console=self.console, transient=True)
            self._bar.start()

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._started = time.perf_counter()
        if self._bar is not None:
            description = (f"{self.stage.name} epoch {epoch - self.first_epoch + 1}/"
                           f"{self.stage.epochs}")
            if self._task is None:
                self._task = self._bar.add_task(description, total=self.params.get("steps"))
            else:
                self._bar.reset(self._task, description=description,
                                total=self.params.get("steps"))

    def on_train_batch_end(self, batch, logs=None) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=batch + 1)

    def on_epoch_end(self, epoch, logs=None) -> None:
        line = epoch_line(self.stage.name, epoch - self.first_epoch + 1, self.stage.epochs,
                          logs or {}, time.perf_counter() - self._started, self.samples)
        self.console.print(line, highlight=False, soft_wrap=True)

    def on_train_end(self, logs=None) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def done_quarters(done: int, total: int) -> int:
    """How many quarters of ``total`` ``done`` has completed (0..4)."""
    return done * 4 // total if total else 4


class TrainProgress:
    """Where a run reports what it does; pass one to a trainer to see its progress.

    ``note(text)`` prints a finding or a step (the dataset summary, "decoding 1200
    images"); ``epochs`` is the factory :func:`edgepose.train.training.fit_stages`
    calls for each stage's :class:`EpochProgress`.
    """

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def counter(self, what: str) -> Callable[[int, int], None]:
        """``update(done, total)`` for a long count (decoding images): a progress bar on a
        terminal; in a log, a line at each quarter of a count of 1000 or more."""
        state: dict[str, object] = {}

        def update(done: int, total: int) -> None:
            if self.console.is_terminal:
                bar = state.get("bar")
                if bar is None:
                    bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(),
                                   TimeElapsedColumn(), console=self.console, transient=True)
                    bar.start()
                    state["bar"], state["task"] = bar, bar.add_task(what, total=total)
                bar.update(state["task"], completed=done)
                if done >= total:
                    bar.stop()
            elif total >= 1000 and done_quarters(done, total) > done_quarters(done - 1, total):
                self.note(f"{what}: {done}/{total}")

        return update

    def epochs(self, stage: Stage, first_epoch: int, samples: int) -> EpochProgress:
        return EpochProgress(self.console, stage, first_epoch, samples)
