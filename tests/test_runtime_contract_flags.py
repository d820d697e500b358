"""Contract flags against what the model states: agreeing is fine, disagreeing is one line.

A flag that silently beats the manifest, the TFLite metadata or an unambiguous input
quantization scores every image confidently wrong (issue 11). Every model here is a
real tiny .tflite with hand-set weights (tests/contract_models.py): the right class
of every image is known.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.errors import ConfigError, ModelError
from edgepose.runtime.classifier import Classifier
from edgepose.runtime.input_contract import InputContract, StatedContract, stated_contract
from edgepose.runtime.manifest import Manifest, TensorSpec
from edgepose.runtime.predict import predict_files
from tests import contract_models as cm


class Stated:
    """The models, each stating its contract one way."""

    def __init__(self, root: Path):
        from edgepose.converters.metadata import add_metadata

        self.images = cm.write_brightness_images(root / "images", per_class=2)
        self.colours = cm.write_colour_images(root / "colours", per_class=2)
        build = root / "models"
        build.mkdir()
        self.float_unit, self.uint8_raw_bytes = cm.unit_tflites(build)
        self.metadata = build / "unit_metadata.tflite"
        self.metadata.write_bytes(add_metadata(self.float_unit.read_bytes(), "unit",
                                               cm.BRIGHTNESS, InputContract.from_range(0, 1),
                                               (cm.SIZE, cm.SIZE)))
        self.manifest = _with_manifest(self.float_unit, build / "manifest" / "model_fp32.tflite",
                                       cm.BRIGHTNESS, InputContract.from_range(0.0, 1.0))
        # A manifest that is wrong about its model (says raw 0..255 for a 0..1 model).
        self.wrong = _with_manifest(self.float_unit, build / "wrong" / "model_fp32.tflite",
                                    cm.BRIGHTNESS, InputContract.raw())
        bgr = cm.to_tflite(cm.colour_model("BGR"), build / "bgr.tflite")
        self.bgr = _with_manifest(bgr, build / "bgr" / "model_fp32.tflite", cm.COLOURS,
                                  InputContract.from_range(0.0, 1.0, channel_order="BGR"))


def _with_manifest(source: Path, model: Path, labels: list[str],
                   contract: InputContract) -> Path:
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(source.read_bytes())
    Manifest("image", labels, "fp32", TensorSpec([1, cm.SIZE, cm.SIZE, 3], "float32"),
             TensorSpec([1, len(labels)], "float32"),
             preprocessing={"height": cm.SIZE, "width": cm.SIZE},
             input_contract=contract.to_dict()).save(Manifest.path_for(model))
    return model


@pytest.fixture(scope="module")
def stated(tmp_path_factory) -> Stated:
    return Stated(tmp_path_factory.mktemp("stated"))


def _answers(model: Path, images: Path, classes=cm.BRIGHTNESS, **kwargs) -> list[tuple]:
    files = cm.class_files(images, classes)
    result = predict_files(model, [f for f, _ in files], k=1, **kwargs)
    return [(p.top[0].label, c) for p, (_, c) in zip(result.predictions, files, strict=True)]


def _error_lines(args: list[str]) -> list[str]:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


# -- disagreeing: one line naming both --------------------------------------------------------

def test_a_range_against_the_manifest_is_refused_naming_both(stated):
    image = stated.images / "dark" / "0.png"
    assert _error_lines(["predict", str(stated.manifest), str(image), "--input-range", "0,255"]) \
        == [f"error: {stated.manifest}: --input-range 0,255 disagrees with the manifest "
            "model_fp32.json (input 0..255 = pixel vs input 0..1 = pixel / 255); drop the flag, "
            "or add "
            "--override-contract to use it anyway"]


def test_mean_std_against_tflite_metadata_is_refused(stated):
    with pytest.raises(ModelError) as info:
        Classifier.from_file(stated.metadata, stated=stated_contract(None, "127.5", "127.5"))
    assert info.value.message == (
        "--input-mean 127.5 --input-std 127.5 disagrees with TFLite metadata "
        "NormalizationOptions (input -1..1 = (pixel - 127.5) / 127.5 vs input 0..1 = pixel / "
        "255); drop the flag, or add "
        "--override-contract to use it anyway")


def test_a_range_against_the_input_quantization_is_refused(stated):
    with pytest.raises(ModelError) as info:
        Classifier.from_file(stated.uint8_raw_bytes, stated=stated_contract("0,255"))
    assert info.value.message == (
        "--input-range 0,255 disagrees with uint8 input quantization (scale 0.00392157, zero "
        "point 0 -> 0..1) (input 0..255 = pixel vs input 0..1 = pixel / 255); drop the flag, or "
        "add --override-contract "
        "to use it anyway")


def test_a_channel_order_against_the_manifest_is_refused(stated):
    with pytest.raises(ModelError) as info:
        Classifier.from_file(stated.bgr, stated=stated_contract(channel_order="rgb"))
    assert info.value.message == (
        "--channel-order rgb disagrees with the manifest model_fp32.json (RGB vs BGR); drop "
        "the flag, or add --override-contract to use it anyway")


def test_a_channel_order_against_rgb_metadata_is_refused(stated):
    with pytest.raises(ModelError) as info:
        Classifier.from_file(stated.metadata, stated=stated_contract(channel_order="bgr"))
    assert info.value.message.startswith("--channel-order bgr disagrees with TFLite metadata "
                                         "NormalizationOptions (BGR vs RGB); ")


def test_bench_refuses_a_disagreeing_flag_in_one_line(stated):
    assert _error_lines(["bench", str(stated.manifest), "--runs", "1", "--warmup", "0",
                         "--input-range", "-1,1"]) == [
        f"error: {stated.manifest}: --input-range -1,1 disagrees with the manifest "
        "model_fp32.json (input -1..1 = (pixel - 127.5) / 127.5 vs input 0..1 = pixel / 255); "
        "drop the flag, or add --override-contract "
        "to use it anyway"]


# -- agreeing: fine, and right ----------------------------------------------------------------

@pytest.mark.parametrize("flags", [("0,1",), (None, "0", "255"), (None, "0,0,0", "255,255,255")])
def test_flags_that_agree_with_the_manifest_are_fine_and_right(stated, flags):
    clf = Classifier.from_file(stated.manifest, stated=stated_contract(*flags))
    assert clf.contract.source.startswith("the manifest model_fp32.json, agreeing with --input-")
    answers = _answers(stated.manifest, stated.images, stated=stated_contract(*flags))
    assert [a for a, _ in answers] == [c for _, c in answers]


def test_a_range_for_a_bgr_model_keeps_its_channel_order(stated):
    clf = Classifier.from_file(stated.bgr, stated=stated_contract("0,1"))
    assert clf.contract.channel_order == "BGR"
    answers = _answers(stated.bgr, stated.colours, cm.COLOURS, stated=stated_contract("0,1"))
    assert [a for a, _ in answers] == [c for _, c in answers]


def test_a_channel_order_where_quantization_states_none_is_the_users_word(stated):
    clf = Classifier.from_file(stated.uint8_raw_bytes, stated=stated_contract(channel_order="bgr"))
    assert clf.contract.channel_order == "BGR" and clf.contract.value_range == (0.0, 1.0)


# -- overriding deliberately ------------------------------------------------------------------

def test_override_contract_fixes_a_wrong_manifest_and_says_so(stated):
    wrong = _answers(stated.wrong, stated.images)
    assert {a for a, _ in wrong} == {"bright"}  # what the wrong manifest answers
    override = StatedContract(input_range=(0.0, 1.0), override=True)
    clf = Classifier.from_file(stated.wrong, stated=override)
    assert clf.contract.source == ("--input-range 0,1 (--override-contract; the model states "
                                   "input 0..255 = pixel, RGB in the manifest model_fp32.json)")
    answers = _answers(stated.wrong, stated.images, stated=override)
    assert [a for a, _ in answers] == [c for _, c in answers]


def test_predict_cli_override_contract(stated):
    image = stated.images / "mid" / "0.png"
    result = CliRunner().invoke(main, ["predict", str(stated.wrong), str(image), "--json",
                                       "--input-range", "0,1", "--override-contract"])
    assert result.exit_code == 0, result.output
    assert '"label": "mid"' in result.stdout


def test_override_contract_alone_is_a_one_line_config_error():
    with pytest.raises(ConfigError) as info:
        stated_contract(override=True)
    assert info.value.message == ("--override-contract needs the contract to use: "
                                  "--input-range, --input-mean/--input-std or --channel-order")


def test_bench_emulate_refuses_contract_flags_it_would_ignore(stated):
    assert _error_lines(["bench", str(stated.manifest), "--emulate", "pi5",
                         "--input-range", "0,1"]) == [
        "error: --emulate does not take --input-range 0,1: the emulated run reads the input "
        "contract from the model (its manifest or TFLite metadata)"]


@pytest.mark.parametrize("flags, agrees", [
    (("-1,1",), True), ((None, "128", "128"), True), ((None, "127.5", "127.5"), True),
    (("0,1",), False), ((None, "0", "1"), False), ((None, "120", "128"), False)])
def test_agreement_allows_rounding_habits_only(flags, agrees):
    from edgepose.runtime.input_contract import apply_stated

    model = InputContract(mean=(127.5,), std=(127.5,), source="TFLite metadata")
    if agrees:
        used = apply_stated(stated_contract(*flags), model, True)
        assert (used.mean, used.std) == ((127.5,), (127.5,))  # the model's own values
    else:
        with pytest.raises(ModelError, match=r"disagrees with TFLite metadata \(input "):
            apply_stated(stated_contract(*flags), model, True)
