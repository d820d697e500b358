"""Progress and order of `edgepose train image`, and reruns of a failed run.

What edgepose learned about the data is printed before the first epoch, each
epoch prints one line in a log, and the same command after a failed (or killed)
run replaces that run instead of refusing it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.data.splits import Splits
from edgepose.errors import ConfigError
from edgepose.train.progress import epoch_line
from edgepose.train.rundir_writer import (
    INCOMPLETE,
    RunWriter,
    in_progress_marker,
    is_complete,
    replace_incomplete_run,
)


@pytest.fixture(scope="module")
def unbalanced_digits(tmp_path_factory) -> Path:
    """3 classes of real digits, 16/16/8 images (class 2 weighs double), 32x32 PNG."""
    from edgepose.data.digits import write_digits

    full = write_digits(tmp_path_factory.mktemp("digits") / "all", size=32)
    subset = tmp_path_factory.mktemp("digits") / "subset"
    for name, count in (("0", 16), ("1", 16), ("2", 8)):
        (subset / name).mkdir(parents=True)
        for path in sorted((full / name).iterdir())[:count]:
            shutil.copy(path, subset / name / path.name)
    (subset / "1" / "broken.png").write_bytes(b"not a png")
    return subset


def _failed_run(path: Path) -> None:
    """A run directory as a crash leaves it: marker with the error, some files."""
    path.mkdir(parents=True)
    (path / INCOMPLETE).write_text("run failed: RuntimeError: out of memory\n")
    (path / "config.json").write_text("{}")
    (path / "leftover.txt").write_text("from the failed run")


@pytest.fixture(scope="module")
def rerun(unbalanced_digits, tmp_path_factory):
    """`train image` into the folder of a failed run, without --overwrite."""
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    _failed_run(run_dir)
    result = CliRunner().invoke(main, [
        "train", "image", str(unbalanced_digits), "--backbone", "mobilenet_v3_small",
        "--input-size", "32", "--weights", "none", "--augment", "none", "--epochs", "2",
        "--batch-size", "8", "--patience", "0", "--seed", "1",
        # op determinism stays on for the whole process: keep it off the shared test session
        "--no-deterministic", "--output", str(run_dir)])
    return run_dir, result


def _index(lines: list[str], start: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(start))


def test_rerun_of_a_failed_run_replaces_it_without_overwrite(rerun):
    run_dir, result = rerun
    assert result.exit_code == 0, result.output
    assert f"replaced the unfinished run in {run_dir}" in result.output
    assert not (run_dir / "leftover.txt").exists()
    assert is_complete(run_dir)


def test_data_summary_skipped_files_and_class_weights_come_before_the_first_epoch(
        rerun, unbalanced_digits):
    run_dir, result = rerun
    lines = result.output.splitlines()
    first_epoch = _index(lines, "train epoch 1/2:")
    assert _index(lines, f"{unbalanced_digits}: 40 images, 3 classes") < first_epoch
    assert _index(lines, "skipped 1 unreadable file(s):") < first_epoch
    assert _index(lines, "leak check (perceptual hash") < first_epoch
    # balanced weights from the train split: n / (classes * count); class 2 has half
    splits = Splits.load(run_dir / "splits.json")
    counts = Counter(s.label for s in splits.samples("train"))
    expected = ", ".join(f"{c} {sum(counts.values()) / (3 * counts[i]):.2f}"
                         for i, c in enumerate(splits.classes))
    weights = _index(lines, "class weights: ")
    assert weights < first_epoch
    assert lines[weights] == f"class weights: {expected}"
    assert counts[2] < counts[0]


def test_each_epoch_prints_one_line_with_its_metrics_in_a_log(rerun):
    _, result = rerun
    epochs = [line for line in result.output.splitlines() if " epoch " in line]
    assert len(epochs) == 2
    assert epochs[0].startswith("train epoch 1/2: loss ")
    assert epochs[0].endswith("graph tracing included)")
    assert epochs[1].startswith("train epoch 2/2: loss ") and "samples/s)" in epochs[1]
    assert "val_acc" in epochs[1]
    assert "\x1b[" not in result.output  # no progress-bar control codes in a log


def test_epoch_line_lists_metrics_in_order_with_the_rate_after_the_first_epoch():
    logs = {"loss": 0.41234, "accuracy": 0.88, "val_loss": 0.5, "val_accuracy": 0.85}
    assert (epoch_line("fine_tune", 3, 4, logs, 2.0, 100)
            == "fine_tune epoch 3/4: loss 0.4123 acc 0.8800 val_loss 0.5000 val_acc 0.8500 "
               "(2.0 s, 50 samples/s)")
    assert (epoch_line("train", 1, 4, {"loss": 1.0}, 9.5, 100)
            == "train epoch 1/4: loss 1.0000 (9.5 s, graph tracing included)")


def test_a_killed_run_whose_process_is_gone_is_replaced(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    run = tmp_path / "run"
    run.mkdir()
    (run / INCOMPLETE).write_text(
        f"training in progress (pid {done.stdout.strip()} on {socket.gethostname()})\n")
    writer = RunWriter(run)
    assert writer.replaced_incomplete
    assert (run / INCOMPLETE).read_text() == in_progress_marker()


def test_a_run_still_being_written_is_refused_with_its_pid(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = tmp_path / "run"
        run.mkdir()
        (run / INCOMPLETE).write_text(
            f"training in progress (pid {live.pid} on {socket.gethostname()})\n")
        with pytest.raises(ConfigError) as error:
            RunWriter(run)
        assert str(error.value) == (f"run directory {run} is being written by process "
                                    f"{live.pid} (wait for it, or pass --overwrite if that run "
                                    "is dead)")
        assert (run / INCOMPLETE).is_file()
    finally:
        live.kill()
        live.wait()


def test_a_run_on_another_host_is_not_guessed_dead(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / INCOMPLETE).write_text("training in progress (pid 1 on other-host)\n")
    with pytest.raises(ConfigError, match="being written by process 1 on other-host"):
        replace_incomplete_run(run)


def test_a_complete_run_still_needs_overwrite(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_text("a finished run")
    with pytest.raises(ConfigError) as error:
        RunWriter(run)
    assert str(error.value) == (f"run directory {run} already exists and is not empty "
                                "(choose another --output or pass --overwrite)")


def test_the_marker_names_this_process():
    assert in_progress_marker() == (f"training in progress (pid {os.getpid()} on "
                                    f"{socket.gethostname()})\n")


def test_a_refused_output_fails_before_the_dataset_is_scanned(tmp_path):
    # the data would fail too (one class); the output is checked first, in a second
    (tmp_path / "data" / "only").mkdir(parents=True)
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_text("a finished run")
    result = CliRunner().invoke(main, ["train", "image", str(tmp_path / "data"), "--weights",
                                       "none", "--input-size", "32", "--output", str(run)])
    assert result.exit_code != 0
    assert result.stderr.strip() == (f"error: run directory {run} already exists and is not "
                                     "empty (choose another --output or pass --overwrite)")
    assert "scanning" not in result.output


def test_a_long_count_prints_a_line_at_each_quarter_in_a_log():
    from io import StringIO

    from rich.console import Console

    from edgepose.train.progress import TrainProgress

    log = StringIO()
    progress = TrainProgress(Console(file=log, force_terminal=False, width=200))
    update = progress.counter("decoding images")
    for done in range(1, 1201):
        update(done, 1200)
    short = progress.counter("decoding images")
    for done in range(1, 11):  # short counts print nothing: they take no time
        short(done, 10)
    assert log.getvalue().splitlines() == [f"decoding images: {n}/1200"
                                           for n in (300, 600, 900, 1200)]


def test_scanning_reports_each_decoded_image(unbalanced_digits):
    from edgepose.data.images import build_image_splits

    calls: list[tuple[int, int]] = []
    report = build_image_splits(unbalanced_digits, check_leaks=False,
                                on_progress=lambda done, total: calls.append((done, total)))
    assert calls == [(n, 41) for n in range(1, 42)]  # 40 digits + the broken file
    assert len(report.splits.items) == 40


def test_on_a_terminal_a_bar_runs_and_each_epoch_still_leaves_its_line(tmp_path):
    from io import StringIO

    import keras
    import numpy as np
    from rich.console import Console

    from edgepose.train.progress import TrainProgress
    from edgepose.train.training import Stage, fit_stages, make_batches

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    screen = StringIO()
    progress = TrainProgress(Console(file=screen, force_terminal=True, width=100))
    history = fit_stages(model, make_batches(x, y, 8, shuffle=True),
                         make_batches(x, y, 8), [Stage("train", 2, 0.01)], tmp_path,
                         patience=0, verbose=0, progress=progress.epochs)
    drawn = screen.getvalue()
    assert "\x1b[" in drawn  # the live bar
    assert "train epoch 1/2: loss " in drawn and "train epoch 2/2: loss " in drawn
    assert history.epochs == 2 and history.steady_samples == 40
    assert history.images_per_second > 0
