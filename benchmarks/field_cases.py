"""Field cases of issue 11 (sections 1 to 7), run end to end: expected vs got, per case.

Each case builds a tiny real model at run time, seeded, with the builders of the
tests that cover its section (hand-set weights from tests/contract_models.py for
sections 1 and 5; the real keypoint trainer on tests/keypoint_poses.py for 2 and 3;
tests/augmentation_models.py, tests/tflite_models.py, run_fixtures and
tests/batchnorm_models.py for 4, 6 and 7: helper modules, never test modules), runs
edgepose on it the way a user would (``convert_run``, ``predict_files``, ``run_bench``,
``train_run``), and records what was expected and what came out. A regression shows as
``ok: false``.

    .venv/bin/python benchmarks/field_cases.py [--out DIR] [--only NAME|SECTION,...]

Writes ``field_cases.json`` and ``field_cases.md`` into ``--out`` (default
``benchmarks/results/<machine>/``); with ``--only`` the other cases' rows of the
earlier files are kept. A few minutes on 2 busy cores; no timing figures are
recorded. To add a case, write one function decorated with
``@case("section", "what the user does")`` that takes the work folder and returns
``(expected, got)`` strings (equal strings pass) or ``(expected, got, ok)`` where the
right value is a bound (an accuracy within a margin, a tolerance).
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

Case = Callable[[Path], "tuple[str, str] | tuple[str, str, bool]"]
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
        got.split(" (input ")[0]


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
        got.split(" (input ")[0]


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


# -- section 2: keypoint models in any coordinate unit ----------------------------------------

_UNIT_RUNS: dict[str, Path] = {}


def _unit_run(work: Path, unit: str) -> Path:
    """A keypoint run trained by the real trainer on the seeded poses of ``unit``, converted
    to fp32 and full int8 (tests/keypoint_poses.py; the settings of test_runtime_keypoint_units)."""
    if unit not in _UNIT_RUNS:
        from tests.keypoint_poses import train_unit_run

        _UNIT_RUNS[unit] = train_unit_run(work / f"poses_{unit}", unit, ("fp32", "int8"))
    return _UNIT_RUNS[unit]


def _unit_case(work: Path, unit: str) -> tuple[str, str, bool]:
    from edgepose.rundir import RunDir, load_inputs
    from edgepose.runtime.classifier import Classifier
    from edgepose.runtime.delegation import inspect_model

    run = _unit_run(work, unit)
    rundir = RunDir.open(run)
    x, y = load_inputs(rundir.splits, rundir.splits.samples("test"), rundir.config)
    right = {}
    for mode in ("fp32", "int8"):
        classifier = Classifier.from_file(run / f"model_{mode}.tflite")
        right[mode] = int(sum(classifier.predict(v).argmax() == t for v, t in zip(x, y,
                                                                                 strict=True)))
    report = inspect_model(run / "model_int8.tflite")
    outside = ", ".join(f"{op} x{n}" for op, n in sorted(report.ops_outside.items())) or "none"
    n = len(y)
    span = ""
    if unit == "pixels":  # the range of the whole data set written (missing joints are 0, 0)
        from tests.keypoint_poses import make_landmarks, vectors

        joints = vectors(make_landmarks(60)[0], "pixels").reshape(-1, 2)
        present = joints[(joints != 0).any(axis=-1)]
        span = (f" (x {present[:, 0].min():.0f}..{present[:, 0].max():.0f} px, "
                f"y {present[:, 1].min():.0f}..{present[:, 1].max():.0f} px)")
    expected = (f"int8 as accurate as fp32 (within 1 sample of {right['fp32']}/{n}), >= 95%; "
                "XNNPACK runs all but RSQRT/SOFTMAX, <= 2 partitions")
    got = (f"int8 {right['int8']}/{n}, fp32 {right['fp32']}/{n}{span}; "
           f"{report.partitions} partitions, {report.delegated_nodes}/{report.total_nodes} "
           f"nodes in XNNPACK; outside: {outside}")
    ok = (right["int8"] >= right["fp32"] - 1 and right["fp32"] >= 0.95 * n
          and set(report.ops_outside) <= {"RSQRT", "SOFTMAX"} and report.partitions <= 2)
    return expected, got, ok


@case("2", "body14 keypoints in PIXELS (640 x 480 frame), 2 classes, MLP trained by "
           "train_keypoint_classifier (what `edgepose train keypoints` calls), full int8 "
           "on the test split")
def keypoints_pixels_int8(work: Path) -> tuple[str, str, bool]:
    return _unit_case(work, "pixels")


@case("2", "the same poses in 0..1 (body14), full int8")
def keypoints_normalized_int8(work: Path) -> tuple[str, str, bool]:
    return _unit_case(work, "normalized")


@case("2", "the same poses as MediaPipe (x, y, z, visibility) x 33, full int8")
def keypoints_mediapipe_int8(work: Path) -> tuple[str, str, bool]:
    return _unit_case(work, "mediapipe")


@case("2", "unseen poses (seed 7) in pixels and in 0..1: same int8 answers")
def keypoints_pixels_match_normalized(work: Path) -> tuple[str, str, bool]:
    from edgepose.runtime.classifier import Classifier
    from tests.keypoint_poses import make_landmarks, vectors

    landmarks, labels = make_landmarks(20, seed=7)
    answers = {}
    for unit in ("normalized", "pixels"):
        classifier = Classifier.from_file(_unit_run(work, unit) / "model_int8.tflite")
        answers[unit] = np.array([classifier.predict(v).argmax()
                                  for v in vectors(landmarks, unit)])
    n = len(labels)
    right = int(np.sum(answers["pixels"] == labels))
    same = int(np.sum(answers["pixels"] == answers["normalized"]))
    return (">= 95% right in pixels, >= 95% the same answer as 0..1",
            f"pixels {right}/{n} right, {same}/{n} the same as 0..1",
            right >= 0.95 * n and same >= 0.95 * n)


# -- section 3: "nobody there" is not a pose --------------------------------------------------

def _few_visible(size: int, visible: int) -> list[float]:
    """A 2-channel vector with the first ``visible`` joints set (as test_runtime_no_person)."""
    v = np.zeros(size)
    v[: 2 * visible] = np.linspace(0.3, 0.6, 2 * visible)
    return v.round(4).tolist()


_NOBODY = {  # body14 (28 numbers): file name -> keypoints, expected "no person" reason
    "zero.json": ([0.0] * 28, "no person: all 28 keypoint numbers are 0"),
    "three.json": (_few_visible(28, 3), "no person: 3 of 14 joints visible, need 4"),
    "nan.json": (_few_visible(28, 14)[:5] + [float("nan")] + _few_visible(28, 14)[6:],
                 "no person: 1 of 28 keypoint numbers are NaN or null"),
    "null.json": ([None] * 28, "no person: 28 of 28 keypoint numbers are NaN or null"),
}


def _nobody_case(work: Path, name: str) -> tuple[str, str]:
    import json

    from edgepose.runtime.predict import predict_files

    values, reason = _NOBODY[name]
    path = work / "nobody" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"keypoints": values}))
    model = _unit_run(work, "normalized") / "model_int8.tflite"
    prediction = predict_files(model, [path], k=2).predictions[0]
    top = ", ".join(f"{t.label} {t.score:.3f}" for t in prediction.top) or "no class"
    return f"{reason}; no class", f"{prediction.no_person}; {top}"


@case("3", "predict on an all-zero body14 vector (int8 keypoint model)")
def no_person_zero(work: Path) -> tuple[str, str]:
    return _nobody_case(work, "zero.json")


@case("3", "predict on a vector with 3 of 14 joints visible")
def no_person_few_joints(work: Path) -> tuple[str, str]:
    return _nobody_case(work, "three.json")


@case("3", "predict on a vector with one NaN")
def no_person_nan(work: Path) -> tuple[str, str]:
    return _nobody_case(work, "nan.json")


@case("3", "predict on a vector of nulls")
def no_person_null(work: Path) -> tuple[str, str]:
    return _nobody_case(work, "null.json")


@case("3", "Classifier.no_person on a real pose (the control: a person, so a class)")
def no_person_control(work: Path) -> tuple[str, str]:
    from edgepose.runtime.classifier import Classifier
    from tests.keypoint_poses import make_landmarks, vectors

    classifier = Classifier.from_file(_unit_run(work, "normalized") / "model_int8.tflite")
    vector = vectors(make_landmarks(1, seed=3)[0][:1], "normalized")[0]
    return "None (a person)", f"{classifier.no_person(vector)} (a person)"


@case("3", "training data with a zero, a 3-joint, a NaN and a null file among 20 poses")
def no_person_at_training(work: Path) -> tuple[str, str]:
    import json

    from edgepose.data.keypoints import build_keypoint_splits
    from tests.keypoint_poses import write_pose_dataset

    root = write_pose_dataset(work / "nobody_data", "normalized", per_class=10)
    for name, cls in (("zero.json", "down"), ("three.json", "down"), ("nan.json", "up"),
                      ("null.json", "up")):
        (root / cls / name).write_text(json.dumps({"keypoints": _NOBODY[name][0]}))
    report = build_keypoint_splits(root, layout="body14")
    left_in = sorted({s.path for s in report.splits.items}
                     & {"down/zero.json", "down/three.json", "up/nan.json", "up/null.json"})
    expected = "; ".join(sorted([
        "down/three.json: no person: 3 of 14 joints visible, need 4; left out",
        "down/zero.json: no person: all 28 keypoint numbers are 0; left out",
        "up/nan.json: no person: 1 of 28 keypoint numbers are NaN or null; left out",
        "up/null.json: no person: 28 of 28 keypoint numbers are NaN or null; left out"]))
    got = "; ".join(sorted(map(str, report.problems)))
    return (expected + " | 20 samples in the splits, none of the 4",
            got + f" | {len(report.splits.items)} samples in the splits, "
                  f"{', '.join(left_in) or 'none'} of the 4")


# -- section 4: user models with augmentation layers ------------------------------------------

@case("4", "Keras 3 tutorial Sequential (RandomFlip, RandomRotation, Rescaling, ..., Dropout) "
           "converted to fp32, dynamic and int8: TFLite vs model(x, training=False) on 12 "
           "digits")
def tutorial_augmentation(work: Path) -> tuple[str, str, bool]:
    import re

    from edgepose.converters import convert_run
    from edgepose.converters.export import inference_outputs
    from edgepose.converters.model_outputs import tflite_probabilities
    from tests.augmentation_models import MODE_ATOL, digit_images, tutorial_model

    model = tutorial_model()
    folder = work / "tutorial"
    folder.mkdir()
    path = folder / "user_model.keras"
    model.save(path)
    x = digit_images(32)
    reference = inference_outputs(model, x)
    acting = float(np.abs(np.asarray(model(x, training=True)) - reference).max())
    calib = folder / "calibration.npy"  # the same real images, the model's 0..255 range
    np.save(calib, x)
    modes = ("fp32", "dynamic", "int8")
    report = convert_run(path, list(modes), calib_data=calib)
    diffs = {mode: float(np.abs(tflite_probabilities(folder / f"model_{mode}.tflite", x)
                                - reference).max()) for mode in modes}
    bypassed = [re.sub(r"_\d+$", "", n) for n in report.settings["inference_mode_bypassed"]]
    expected = ("converts; max |TFLite - training=False| <= "
                + ", ".join(f"{MODE_ATOL[m]:g} ({m})" for m in modes)
                + "; bypassed random_flip, random_rotation, dropout")
    got = ("converts; " + ", ".join(f"{m} {diffs[m]:.1e}" for m in modes)
           + f" (training=True differs by {acting:.2f}); bypassed {', '.join(bypassed)}")
    ok = (all(diffs[m] <= MODE_ATOL[m] for m in modes)
          and bypassed == ["random_flip", "random_rotation", "dropout"] and acting > 1e-3)
    return expected, got, ok


# -- section 6: measurements that cannot flatter ----------------------------------------------

def _collapsed(work: Path) -> tuple[Path, Path]:
    """A real fp32 classifier answering "one" for every image, and 3 x 40 digit images in
    class folders ("one" sorts first), as the ``collapsed`` fixture of
    test_bench_measurements."""
    from tests import tflite_models as tm

    folder = work / "collapsed"
    folder.mkdir(parents=True, exist_ok=True)
    tm.write_digits(folder / "data")
    return tm.collapsed_classifier(folder), folder / "data"


@case("6", "collapsed model (one class for everything) benched with --max-samples 30 on "
           "class-ordered data (the first 30 files are all of its class)")
def bench_max_samples_stratified(work: Path) -> tuple[str, str]:
    from edgepose.bench import run_bench

    model, data = _collapsed(work)
    sample = run_bench([model], data=data, max_samples=30, warmup=0, runs=2, reference="none")
    whole = run_bench([model], data=data, warmup=0, runs=2, reference="none")
    said = sample.settings.sample.replace(str(data), "DATA")  # the work folder changes per run
    return ("10/30 = 33.3% (all 120: 33.3%); 30 of 120 samples (stratified by class, seed 0) "
            "from DATA",
            f"{round(sample.rows[0].accuracy * 30)}/30 = {sample.rows[0].accuracy:.1%} "
            f"(all 120: {whole.rows[0].accuracy:.1%}); {said}")


@case("6", "`convert --int16x8` after a full (fp32 + int8) conversion of a run")
def report_keeps_rows(work: Path) -> tuple[str, str]:
    from edgepose.converters import convert_run
    from edgepose.fileio import read_json, sha256_file
    from tests.run_fixtures import make_digits_run

    run = make_digits_run(work / "digits", per_class=20, epochs=10)
    convert_run(run, ["fp32", "int8"])
    first = read_json(run / "conversion_report.json")["modes"]
    convert_run(run, ["int16x8"])
    after = read_json(run / "conversion_report.json")["modes"]
    sha = sha256_file(run / "model.keras")
    kept = "unchanged" if after[:2] == first else "CHANGED"
    stamped = all(m.get("made_at") and m.get("source_sha256") == sha for m in after)
    return ("rows fp32, int8, int16x8; fp32/int8 rows unchanged; every row stamped "
            "(made_at, source sha256)",
            f"rows {', '.join(m['mode'] for m in after)}; fp32/int8 rows {kept}; "
            f"{'every row' if stamped else 'NOT every row'} stamped (made_at, source sha256)")


# -- section 7: training that looks fine and is not -------------------------------------------

@case("7", "BatchNorm CNN from scratch, 3 epochs on 240 real digits (10 classes, momentum "
           "0.999): recorded val accuracy vs what the weights learned, plain Keras as control")
def batchnorm_short_run(work: Path) -> tuple[str, str, bool]:
    from tests.batchnorm_models import learned_accuracy, plain_keras_accuracies, train_bn_run

    outcome, data = train_bn_run(work, name="bn")
    (x_train, y_train), (x_val, y_val) = data["train"], data["val"]
    learned = learned_accuracy(outcome.model.inference, x_train, x_val, y_val)
    recorded = outcome.history.rows[-1]["val_accuracy"]
    before, after = plain_keras_accuracies(x_train, y_train, x_val, y_val)
    expected = ("recorded val accuracy within 0.05 of learned (> 0.6; chance 0.1); plain Keras "
                "<= 0.2 until its statistics are re-estimated")
    got = (f"recorded {recorded:.3f}, learned {learned:.3f}; plain Keras {before:.3f}, "
           f"re-estimated {after:.3f}")
    ok = learned > 0.6 and abs(recorded - learned) <= 0.05 and before <= 0.2 \
        and after >= before + 0.4
    return expected, got, ok


@case("7", "the same run on shuffled labels (nothing to learn), 1 epoch: metrics.json quality")
def chance_run_flagged(work: Path) -> tuple[str, str]:
    import contextlib
    import io
    import json

    from tests.batchnorm_models import train_bn_run

    shuffled = lambda y: np.random.default_rng(5).permutation(y)  # noqa: E731
    with contextlib.redirect_stderr(io.StringIO()):  # the loud WARNING (asserted in tests)
        outcome, _ = train_bn_run(work, labels_override=shuffled, epochs=1, name="shuffled")
    quality = json.loads((outcome.path / "metrics.json").read_text())["quality"]
    flagged = sorted({w.split(" (")[0] for w in quality["warnings"] if "at chance" in w})
    return ("quality.ok false; at chance: test split, val split",
            f"quality.ok {str(quality['ok']).lower()}; at chance: {', '.join(flagged) or 'none'}")


# -- running ----------------------------------------------------------------------------------

def run_cases(work: Path, only: set[str] | None = None) -> list[CaseResult]:
    """Run every registered case (or those whose name or section is in ``only``); a crash is
    a failed case. A case returns ``(expected, got)`` (equal strings pass) or, where the right
    value is a bound rather than one string, ``(expected, got, ok)``."""
    results = []
    for section, title, fn in CASES:
        if only and fn.__name__ not in only and section not in only:
            continue
        try:
            outcome = fn(work)
            expected, got = outcome[0], outcome[1]
            ok = outcome[2] if len(outcome) == 3 else expected == got
        except Exception as exc:  # a traceback is itself the regression to show
            expected, got, ok = "a result", f"{exc.__class__.__name__}: {exc}", False
        results.append(CaseResult(fn.__name__, section, title, expected, got, bool(ok)))
        mark = "ok  " if results[-1].ok else "FAIL"
        print(f"{mark} {section} {fn.__name__}: {got}", flush=True)
    return results


def merge_previous(results: list[CaseResult], path: Path) -> list[CaseResult]:
    """``results`` of an ``--only`` run merged into the earlier file's cases, in case order
    (a case no longer registered is dropped), so a partial rerun keeps the other rows."""
    from edgepose.fileio import read_json

    if not path.is_file():
        return results
    by_name = {c["name"]: CaseResult(**c) for c in read_json(path).get("cases", [])}
    by_name.update({r.name: r for r in results})
    return [by_name[fn.__name__] for _, _, fn in CASES if fn.__name__ in by_name]


SECTIONS = {  # issue 11's section headings
    "1": "The pixel contract of an image model",
    "2": "Keypoint models that survive int8 in any coordinate unit",
    "3": '"Nobody there" is not a pose',
    "4": "User models with augmentation layers",
    "5": "Models edgepose did not expect",
    "6": "Measurements that cannot flatter",
    "7": "Training that looks fine and is not",
}


def to_markdown(results: list[CaseResult], machine: str) -> str:
    """The results as Markdown: one summary row per section (a failing case is named
    there), then every case, by section."""
    results = sorted(results, key=lambda r: r.section)  # stable: case order within a section
    passed = sum(r.ok for r in results)
    lines = [f"# Field cases of issue 11 on {machine}", "",
             f"{passed}/{len(results)} cases give the expected result. Rerun: "
             "`.venv/bin/python benchmarks/field_cases.py`.", "",
             "| section | issue 11 | cases ok | failing |", "|---|---|---|---|"]
    for number in sorted({r.section for r in results}):
        mine = [r for r in results if r.section == number]
        failing = ", ".join(r.name for r in mine if not r.ok) or "none"
        lines.append(f"| {number} | {SECTIONS.get(number, '')} | "
                     f"{sum(r.ok for r in mine)}/{len(mine)} | {failing} |")
    lines += ["", "| section | case | expected | got | ok |", "|---|---|---|---|---|"]
    for r in results:
        cells = [r.section, r.title, r.expected, r.got, "yes" if r.ok else "**NO**"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from edgepose.bench.device import machine_slug
    from edgepose.fileio import write_json, write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", default=None,
                        help="comma-separated case function names or section numbers (2,3); "
                             "the other cases' rows of an earlier result file are kept")
    args = parser.parse_args(argv)
    machine = machine_slug()
    out = results_dir(args.out, machine)
    only = set(args.only.split(",")) if args.only else None
    with tempfile.TemporaryDirectory(prefix="edgepose-field-") as tmp:
        results = run_cases(Path(tmp), only)
    ran_ok = all(r.ok for r in results)
    if only:
        results = merge_previous(results, out / "field_cases.json")
    write_json(out / "field_cases.json", {"machine": machine,
                                          "cases": [asdict(r) for r in results]})
    write_text(out / "field_cases.md", to_markdown(results, machine))
    print(f"wrote {out / 'field_cases.json'} and field_cases.md")
    return 0 if ran_ok else 1


if __name__ == "__main__":
    sys.exit(main())
