"""`convert` contract flags against what the source states: agreeing is fine, disagreeing
is one line naming both, ``--override-contract`` makes it deliberate (issue 11).

A run's recorded contract or a Rescaling-of-raw-pixels first layer states how raw
pixels become model input; a flag that silently beat it would calibrate and score
every image on the wrong range. Models are hand-set tiny Keras models
(tests/contract_models.py) whose right class of every image is known.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.converters import convert_run
from edgepose.converters.source import resolve_source, source_contract
from edgepose.errors import ConfigError, ModelError
from edgepose.runtime.input_contract import InputContract, StatedContract, stated_contract
from edgepose.runtime.manifest import Manifest
from edgepose.runtime.predict import predict_files
from tests import contract_models as cm

RESCALE_SOURCE = "the model's first layer 'rescale' (Rescaling of raw 0..255 pixels)"


@pytest.fixture(scope="module")
def brightness(tmp_path_factory) -> Path:
    return cm.write_brightness_images(tmp_path_factory.mktemp("brightness"), per_class=3)


def _save(model, folder: Path, labels: list[str], config: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("\n".join(labels) + "\n")
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    model.save(folder / "model.keras")
    return folder / "model.keras"


@pytest.fixture(scope="module")
def rescaling(tmp_path_factory) -> Path:
    """A bare .keras whose first layer is Rescaling(1/255): it states raw 0..255 pixels."""
    return _save(cm.brightness_model("rescaling"), tmp_path_factory.mktemp("rescaling"),
                 cm.BRIGHTNESS)


@pytest.fixture(scope="module")
def recorded_bgr(tmp_path_factory) -> Path:
    """A BGR 0..1 model whose folder's config.json records that contract."""
    contract = InputContract.from_range(0.0, 1.0, channel_order="BGR")
    return _save(cm.colour_model("BGR"), tmp_path_factory.mktemp("bgr"), cm.COLOURS,
                 {"task": "image", "input_contract": contract.to_dict()})


def _contract(path: Path, stated: StatedContract | None) -> InputContract:
    import keras

    src = resolve_source(path)
    src.config = {"task": "image", **src.config}
    return source_contract(src, keras.models.load_model(src.model_path), stated)


def _errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_range_flag_against_a_rescaling_layer_is_refused_in_one_line(rescaling, brightness):
    result = CliRunner().invoke(main, ["convert", str(rescaling), "--int8", "--input-range",
                                       "0,1", "--calib-data", str(brightness)])
    assert result.exit_code == ModelError.exit_code
    assert _errors(result) == [
        f"error: {rescaling}: --input-range 0,1 disagrees with {RESCALE_SOURCE} "
        "(input 0..1 = pixel / 255 vs input 0..255 = pixel); drop the flag, or add "
        "--override-contract to use it anyway"]
    assert not (rescaling.parent / "model_int8.tflite").exists()


@pytest.mark.parametrize("stated, clash", [
    (StatedContract(input_range=(-1.0, 1.0)), "--input-range -1,1 disagrees with {src} "
                                              "(input -1..1 = (pixel - 127.5) / 127.5 vs input "
                                              "0..255 = pixel)"),
    (StatedContract(mean=(127.5,), std=(127.5,)), "--input-mean 127.5 --input-std 127.5 "
                                                  "disagrees with {src} (input -1..1 = (pixel - "
                                                  "127.5) / 127.5 vs input 0..255 = pixel)"),
    (StatedContract(mean=(0.0,), std=(255.0,), channel_order="bgr"),
     "--input-mean 0 --input-std 255 --channel-order bgr disagrees with {src} "
     "(input 0..1 = pixel / 255 vs input 0..255 = pixel)"),
])
def test_every_disagreeing_normalisation_is_refused_naming_flag_and_source(
        rescaling, stated, clash):
    message = f"{rescaling}: {clash.format(src=RESCALE_SOURCE)}; drop the flag, or add " \
              "--override-contract to use it anyway"
    with pytest.raises(ModelError) as info:
        _contract(rescaling, stated)
    assert str(info.value) == message


def test_an_agreeing_range_is_the_source_s_contract(rescaling):
    contract = _contract(rescaling, StatedContract(input_range=(0.0, 255.0)))
    assert (contract.mean, contract.std, contract.channel_order) == ((0.0,), (1.0,), "RGB")
    assert contract.source == f"{RESCALE_SOURCE}, agreeing with --input-range 0,255"


def test_a_rescaling_layer_says_no_channel_order_so_the_flag_is_taken(rescaling):
    contract = _contract(rescaling, StatedContract(channel_order="bgr"))
    assert (contract.value_range, contract.channel_order) == ((0.0, 255.0), "BGR")


def test_a_channel_order_against_the_run_s_recorded_contract_is_refused(recorded_bgr):
    with pytest.raises(ModelError) as info:
        _contract(recorded_bgr, StatedContract(channel_order="rgb"))
    assert str(info.value) == (
        f"{recorded_bgr}: --channel-order rgb disagrees with the run's config.json (RGB vs "
        "BGR); drop the flag, or add --override-contract to use it anyway")


def test_a_range_against_the_run_s_recorded_contract_is_refused(recorded_bgr):
    with pytest.raises(ModelError, match=r"--input-range 0,255 disagrees with the run's "
                                         r"config\.json \(input 0\.\.255 = pixel vs input 0\.\.1 "
                                         r"= pixel / 255\)"):
        _contract(recorded_bgr, StatedContract(input_range=(0.0, 255.0)))


def test_an_edgepose_trained_model_refuses_a_foreign_range(tmp_path):
    """config.json naming a backbone: edgepose trained it, rescaling in the graph."""
    path = _save(cm.brightness_model("rescaling"), tmp_path, cm.BRIGHTNESS,
                 {"task": "image", "backbone": "scratch"})
    with pytest.raises(ModelError, match=r"--input-range 0,1 disagrees with the run directory "
                                         r"\(edgepose models rescale in the graph\) "
                                         r"\(input 0\.\.1 = pixel / 255 vs input 0\.\.255 = "
                                         r"pixel\)"):
        _contract(path, StatedContract(input_range=(0.0, 1.0)))


def test_the_recorded_contract_is_used_without_flags(recorded_bgr):
    contract = _contract(recorded_bgr, None)
    assert (contract.value_range, contract.channel_order, contract.source) == (
        (0.0, 1.0), "BGR", "the run's config.json")


def test_override_contract_uses_the_flag_says_so_and_converts(tmp_path, brightness):
    """A config.json that is wrong about its model (says 0..255 for a 0..1 model): the
    user overrides it, and every image is then right in int8."""
    path = _save(cm.brightness_model("0..1"), tmp_path / "m", cm.BRIGHTNESS,
                 {"task": "image", "input_contract": InputContract.raw().to_dict()})
    refused = CliRunner().invoke(main, ["convert", str(path), "--fp32", "--input-range", "0,1"])
    assert refused.exit_code == ModelError.exit_code
    assert _errors(refused) == [
        f"error: {path}: --input-range 0,1 disagrees with the run's config.json (input 0..1 = "
        "pixel / 255 vs input 0..255 = pixel); drop the flag, or add --override-contract to use "
        "it anyway"]
    result = CliRunner().invoke(main, ["convert", str(path), "--int8", "--input-range", "0,1",
                                       "--override-contract", "--calib-data", str(brightness),
                                       "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["settings"]["input_contract"] == (
        "input 0..1 = pixel / 255, RGB, NHWC, float32 (from --input-range 0,1 "
        "(--override-contract; the model states input 0..255 = pixel, RGB in the run's "
        "config.json))")
    model = path.parent / "model_int8.tflite"
    assert Manifest.load(model.with_suffix(".json")).input_contract["std"] == [255.0]
    files = cm.class_files(brightness, cm.BRIGHTNESS)
    answers = predict_files(model, [f for f, _ in files], k=1).predictions
    assert [p.top[0].label for p in answers] == [t for _, t in files]


def test_override_contract_alone_is_a_one_line_config_error(rescaling):
    result = CliRunner().invoke(main, ["convert", str(rescaling), "--fp32",
                                       "--override-contract"])
    assert result.exit_code == ConfigError.exit_code
    assert _errors(result) == [
        "error: --override-contract needs the contract to use: --input-range, "
        "--input-mean/--input-std or --channel-order"]
    with pytest.raises(ConfigError):
        stated_contract(override=True)


def test_a_bare_model_stating_nothing_takes_the_flag(tmp_path):
    path = _save(cm.brightness_model("0..1"), tmp_path, cm.BRIGHTNESS)
    contract = _contract(path, StatedContract(input_range=(0.0, 1.0)))
    assert (contract.mean, contract.std, contract.source) == ((0.0,), (255.0,), "--input-range")


def test_convert_run_refuses_the_same_way_as_the_cli(rescaling):
    with pytest.raises(ModelError, match="disagrees with"):
        convert_run(rescaling, ["fp32"], stated=StatedContract(input_range=(0.0, 1.0)))
