"""Field cases of issue 11 (sections 1 and 5), run end to end: expected vs got, per case.

Each case builds a tiny real model with hand-set weights (tests/contract_models.py:
the right class of every image is known), runs edgepose on it the way a user
would (``convert_run``, ``predict_files``, ``Classifier.from_file``), and records
what was expected and what came out. A regression shows as ``ok: false``.

    .venv/bin/python benchmarks/field_cases.py [--out DIR] [--only NAME,...]

Writes ``field_cases.json`` and ``field_cases.md`` into ``--out`` (default
``benchmarks/results/<machine>/``). About a minute on 2 busy cores; no timing
figures are recorded. To add a case, write one function decorated with
``@case("section", "what the user does")`` that takes the work folder and
returns ``(expected, got)`` strings; equal strings pass.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from benchmark_utils import results_dir  # noqa: E402  (the one path set-up)

from tests import contract_models as cm  # noqa: E402

Case = Callable[[Path], tuple[str, str]]
CASES: list[tuple[str, str, Case]] = []


def case(section: str, title: str) -> Callable[[Case], Case]:
    """Register a field case: ``fn(work_dir) -> (expected, got)``."""
    def register(fn: Case) -> Case:
        CASES.append((section, title, fn))
        return fn
    return register


@dataclass
class CaseResult:
    """One case's outcome."""

    name: str
    section: str
    title: str
    expected: str
    got: str
    ok: bool


# -- helpers ----------------------------------------------------------------------------------

def _error(fn: Callable[[], object]) -> str:
    """The one-line message an EdgeposeError gives, or what happened instead."""
    from edgepose.errors import EdgeposeError

    try:
        fn()
    except EdgeposeError as exc:
        return exc.message
    return "no error"


def _keras(work: Path, model, classes: list[str], name: str = "model") -> Path:
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("\n".join(classes) + "\n")
    model.save(folder / "model.keras")
    return folder / "model.keras"


def _accuracy(model: Path, images: Path, classes: list[str], **kwargs) -> str:
    from edgepose.runtime.predict import predict_files

    files = cm.class_files(images, classes)
    result = predict_files(model, [f for f, _ in files], k=1, **kwargs)
    right = sum(p.top[0].label == c for p, (_, c) in zip(result.predictions, files, strict=True))
    return f"{right}/{len(files)} right"


def _images(work: Path) -> Path:
    folder = work / "brightness"
    if not folder.is_dir():
        cm.write_brightness_images(folder)
    return folder


def _labels_next_to(model: Path, classes: list[str]) -> Path:
    path = model.with_suffix(".txt")
    path.write_text("\n".join(classes) + "\n")
    return path


# -- section 1: the pixel contract ------------------------------------------------------------

@case("1", "0..1 model (no Rescaling): convert --calib-data DIR without stating the range")
def unstated_keras(work: Path) -> tuple[str, str]:
    from edgepose.converters import convert_run

    path = _keras(work, cm.brightness_model("0..1"), cm.BRIGHTNESS, "unstated")
    got = _error(lambda: convert_run(path, ["int8"], calib_data=_images(work)))
    return "refused: state it with --input-range", \
        "refused: state it with --input-range" if "state it with --input-range" in got else got


@case("1", "0..1 model converted with --input-range 0,1: int8 predict on dark/mid/bright")
def stated_keras_int8(work: Path) -> tuple[str, str]:
    from edgepose.converters import convert_run
    from edgepose.runtime.input_contract import StatedContract

    path = _keras(work, cm.brightness_model("0..1"), cm.BRIGHTNESS, "stated")
    convert_run(path, ["int8"], calib_data=_images(work),
                stated=StatedContract(input_range=(0.0, 1.0)))
    n = len(cm.class_files(_images(work), cm.BRIGHTNESS))
    return f"{n}/{n} right", _accuracy(path.parent / "model_int8.tflite", _images(work),
                                       cm.BRIGHTNESS)


@case("1", "0..1 model told the wrong range (--input-range 0,255): the old silent answer, "
           "'bright' for every image, reproduced on purpose")
def wrong_statement_is_visible(work: Path) -> tuple[str, str]:
    from edgepose.runtime.input_contract import StatedContract

    model = cm.to_tflite(cm.brightness_model("0..1"), work / "unit_fp32.tflite")
    n = len(cm.class_files(_images(work), cm.BRIGHTNESS))
    got = _accuracy(model, _images(work), cm.BRIGHTNESS,
                    labels=_labels_next_to(model, cm.BRIGHTNESS),
                    stated=StatedContract(input_range=(0.0, 255.0)))
    return f"{n // 3}/{n} right", got  # only the bright images: the contract decides


@case("1", "calibration .npy in 0..255 for a 0..1 model")
def npy_pixels_for_unit_model(work: Path) -> tuple[str, str]:
    from edgepose.converters import convert_run
    from edgepose.runtime.input_contract import StatedContract

    path = _keras(work, cm.brightness_model("0..1"), cm.BRIGHTNESS, "npy255")
    npy = work / "calib_0_255.npy"
    np.save(npy, np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype(np.float32))
    got = _error(lambda: convert_run(path, ["int8"], calib_data=npy,
                                     stated=StatedContract(input_range=(0.0, 1.0))))
    return "calibration data spans 0..255 but the model's input contract is 0..1", \
        got.split(" (pixels")[0]


@case("1", "calibration .npy in 0..1 for a raw 0..255 (Rescaling) model")
def npy_unit_for_raw_model(work: Path) -> tuple[str, str]:
    from edgepose.converters import convert_run

    path = _keras(work, cm.brightness_model("rescaling"), cm.BRIGHTNESS, "npy01")
    npy = work / "calib_0_1.npy"
    x = np.random.default_rng(0).random((8, 32, 32, 3)).astype(np.float32)
    x[0, 0, 0], x[0, 0, 1] = 0.0, 1.0
    np.save(npy, x)
    got = _error(lambda: convert_run(path, ["int8"], calib_data=npy))
    return "calibration data spans 0..1 but the model's input contract is 0..255", \
        got.split(" (pixels")[0]


@case("1", "calibration .npy with one NaN")
def npy_nan(work: Path) -> tuple[str, str]:
    from edgepose.converters import convert_run

    path = _keras(work, cm.brightness_model("rescaling"), cm.BRIGHTNESS, "nan")
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype(np.float32)
    x[3, 5, 5, 1] = np.nan
    np.save(work / "nan.npy", x)
    got = _error(lambda: convert_run(path, ["int8"], calib_data=work / "nan.npy"))
    return "calibration data has 1 NaN/inf values (first in sample 3); int8 ranges would be " \
        "meaningless", got


@case("1", "third-party uint8 model, input scale 1/255 zero point 0 (raw bytes), no manifest")
def uint8_raw_bytes(work: Path) -> tuple[str, str]:
    model = cm.to_tflite(cm.brightness_model("0..1"), work / "uint8.tflite", io="uint8",
                         representative=cm.unit_representative())
    n = len(cm.class_files(_images(work), cm.BRIGHTNESS))
    return f"{n}/{n} right", _accuracy(model, _images(work), cm.BRIGHTNESS,
                                       labels=_labels_next_to(model, cm.BRIGHTNESS))


@case("1", "third-party float model, no manifest, no metadata, nothing stated")
def float_unstated(work: Path) -> tuple[str, str]:
    from edgepose.runtime.classifier import Classifier

    model = cm.to_tflite(cm.brightness_model("0..1"), work / "float.tflite")
    got = _error(lambda: Classifier.from_file(model))
    return "refused: no stated pixel range", \
        "refused: no stated pixel range" if "no stated pixel range" in got else got


@case("1", "BGR model, --channel-order bgr --input-range 0,1")
def bgr(work: Path) -> tuple[str, str]:
    from edgepose.runtime.input_contract import StatedContract

    images = cm.write_colour_images(work / "colours")
    model = cm.to_tflite(cm.colour_model("BGR"), work / "bgr.tflite")
    n = len(cm.class_files(images, cm.COLOURS))
    return f"{n}/{n} right", _accuracy(
        model, images, cm.COLOURS, labels=_labels_next_to(model, cm.COLOURS),
        stated=StatedContract(input_range=(0.0, 1.0), channel_order="bgr"))


# -- section 5: models edgepose did not expect ------------------------------------------------

@case("5", "third-party model with a fixed batch of 4")
def batch4(work: Path) -> tuple[str, str]:
    from edgepose.keras_quiet import tf
    from edgepose.runtime.input_contract import StatedContract

    model = cm.to_tflite(cm.brightness_model("0..1", batch_size=4), work / "batch4.tflite",
                         signature=[tf.TensorSpec((4, 32, 32, 3), tf.float32)])
    n = len(cm.class_files(_images(work), cm.BRIGHTNESS))
    return f"{n}/{n} right", _accuracy(model, _images(work), cm.BRIGHTNESS,
                                       labels=_labels_next_to(model, cm.BRIGHTNESS),
                                       stated=StatedContract(input_range=(0.0, 1.0)))


@case("5", "NCHW model (input 1x3x32x32)")
def nchw(work: Path) -> tuple[str, str]:
    from edgepose.runtime.input_contract import StatedContract

    model = cm.to_tflite(cm.brightness_model("0..1", input_shape=(3, 32, 32),
                                             channels_first=True), work / "nchw.tflite")
    n = len(cm.class_files(_images(work), cm.BRIGHTNESS))
    return f"{n}/{n} right", _accuracy(model, _images(work), cm.BRIGHTNESS,
                                       labels=_labels_next_to(model, cm.BRIGHTNESS),
                                       stated=StatedContract(input_range=(0.0, 1.0)))


@case("5", "float16 input")
def float16(work: Path) -> tuple[str, str]:
    from edgepose.runtime.input_contract import StatedContract

    model = cm.to_tflite(cm.brightness_model("0..1", dtype="float16"), work / "fp16in.tflite")
    n = len(cm.class_files(_images(work), cm.BRIGHTNESS))
    return f"{n}/{n} right", _accuracy(model, _images(work), cm.BRIGHTNESS,
                                       labels=_labels_next_to(model, cm.BRIGHTNESS),
                                       stated=StatedContract(input_range=(0.0, 1.0)))


@case("5", "dynamic height/width, no manifest")
def dynamic(work: Path) -> tuple[str, str]:
    from edgepose.keras_quiet import tf
    from edgepose.runtime.classifier import Classifier
    from edgepose.runtime.input_contract import StatedContract

    model = cm.to_tflite(cm.brightness_model("0..1", batch_size=None,
                                             input_shape=(None, None, 3)),
                         work / "dynamic.tflite",
                         signature=[tf.TensorSpec((1, None, None, 3), tf.float32)])
    got = _error(lambda: Classifier.from_file(
        model, stated=StatedContract(input_range=(0.0, 1.0))))
    return ("input has a dynamic height/width (shape signature [1, -1, -1, 3]) and nothing "
            "states the image size (no manifest preprocessing, no TFLite metadata image size)"), got


@case("5", "landmark model (63 + 1 outputs) given to predict")
def landmarks(work: Path) -> tuple[str, str]:
    from edgepose.keras_quiet import keras
    from edgepose.runtime.classifier import Classifier

    x = keras.Input((32, 32, 3), batch_size=1)
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    model = cm.to_tflite(keras.Model(x, [keras.layers.Dense(63)(pooled),
                                         keras.layers.Dense(1)(pooled)]),
                         work / "landmarks.tflite")
    got = _error(lambda: Classifier.from_file(model))
    return "model has 2 outputs; a classifier has one output of class scores", \
        got.split(" (")[0] + "; " + got.split("; ")[-1]


@case("5", "two inputs")
def two_inputs(work: Path) -> tuple[str, str]:
    from edgepose.keras_quiet import keras, tf
    from edgepose.runtime.classifier import Classifier

    a, b = keras.Input((32, 32, 3), batch_size=1), keras.Input((4,), batch_size=1)
    out = keras.layers.Dense(2)(keras.layers.Concatenate()(
        [keras.layers.GlobalAveragePooling2D()(a), b]))
    model = cm.to_tflite(keras.Model([a, b], out), work / "two.tflite",
                         signature=[[tf.TensorSpec((1, 32, 32, 3)), tf.TensorSpec((1, 4))]])
    got = _error(lambda: Classifier.from_file(model))
    return "model has 2 inputs ([1, 32, 32, 3] float32, [1, 4] float32); the classifier feeds " \
        "one image or vector", got


# -- running ----------------------------------------------------------------------------------

def run_cases(work: Path, only: set[str] | None = None) -> list[CaseResult]:
    """Run every registered case (or those named in ``only``); a crash is a failed case."""
    results = []
    for section, title, fn in CASES:
        if only and fn.__name__ not in only:
            continue
        try:
            expected, got = fn(work)
        except Exception as exc:  # a traceback is itself the regression to show
            expected, got = "a result", f"{exc.__class__.__name__}: {exc}"
        results.append(CaseResult(fn.__name__, section, title, expected, got,
                                  expected == got))
        mark = "ok  " if results[-1].ok else "FAIL"
        print(f"{mark} {section} {fn.__name__}: {got}", flush=True)
    return results


def to_markdown(results: list[CaseResult], machine: str) -> str:
    """The results as a Markdown table."""
    passed = sum(r.ok for r in results)
    lines = [f"# Field cases of issue 11 (sections 1 and 5) on {machine}", "",
             f"{passed}/{len(results)} cases give the expected result. Rerun: "
             "`.venv/bin/python benchmarks/field_cases.py`.", "",
             "| section | case | expected | got | ok |", "|---|---|---|---|---|"]
    for r in results:
        cells = [r.section, r.title, r.expected, r.got, "yes" if r.ok else "**NO**"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from edgepose.bench.device import machine_slug
    from edgepose.fileio import write_json, write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", default=None, help="comma-separated case function names")
    args = parser.parse_args(argv)
    machine = machine_slug()
    out = results_dir(args.out, machine)
    only = set(args.only.split(",")) if args.only else None
    with tempfile.TemporaryDirectory(prefix="edgepose-field-") as tmp:
        results = run_cases(Path(tmp), only)
    write_json(out / "field_cases.json", {"machine": machine,
                                          "cases": [asdict(r) for r in results]})
    write_text(out / "field_cases.md", to_markdown(results, machine))
    print(f"wrote {out / 'field_cases.json'} and field_cases.md")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
