"""Bad input: one-line errors naming the file and the problem."""

from __future__ import annotations

import json
import zipfile

import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.converters import convert_run
from edgepose.converters.export import load_keras_model
from edgepose.errors import ConfigError, ConversionError, ModelError


def test_a_non_keras_file_is_a_model_error(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("this is not a model")
    with pytest.raises(ModelError, match="not a Keras model") as info:
        load_keras_model(path)
    assert info.value.path == path


def test_a_keras_file_from_an_incompatible_version_names_the_version(tmp_path):
    path = tmp_path / "old.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "2.4.0"}))
        archive.writestr("config.json", json.dumps({"class_name": "Model",
                                                    "config": {"layers": "???"}}))
        archive.writestr("model.weights.h5", b"")
    with pytest.raises(ModelError, match=r"saved by Keras 2\.4\.0"):
        load_keras_model(path)


def test_a_model_without_inputs_is_a_model_error(tmp_path):
    import keras

    path = tmp_path / "unbuilt.keras"
    keras.Sequential([keras.layers.Dense(2)]).save(path)
    with pytest.raises(ModelError, match="no inputs/outputs"):
        load_keras_model(path)


def test_unsupported_ops_are_named_with_their_layer(tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="edgepose_tests")
    class InverseErf(keras.layers.Layer):
        def call(self, t):
            return keras.ops.erfinv(keras.ops.tanh(t) * 0.5)  # no TFLite builtin kernel

    inputs = keras.Input((4,))
    x = keras.layers.Dense(3)(inputs)
    x = InverseErf(name="strange_activation")(x)
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(
        tmp_path / "model.keras")
    with pytest.raises(ConversionError, match="Erfinv in layer strange_activation"):
        convert_run(tmp_path / "model.keras", ["fp32"])


def test_auto_fallback_without_a_budget_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="--max-drop"):
        convert_run(tmp_path, ["int8"], auto_fallback_enabled=True)


def test_cli_prints_one_line_and_exits_non_zero(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"\x00" * 64)
    result = CliRunner().invoke(main, ["convert", str(tmp_path / "model.keras"), "--int8"])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "model.keras: not a Keras model" in errors[0]
    assert "Traceback" not in result.output
