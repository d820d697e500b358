"""What every conversion mode is measured and calibrated on: two steps of ``run_conversion``.

:func:`reference_outputs` runs the Keras model on the held-out test split once
(every mode's drift is measured against it); :func:`calibration_set` builds the
representative dataset the calibrated modes (and per-layer debugging) need.
"""

from __future__ import annotations

import io as _io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgepose.converters import calibration as calib
from edgepose.converters.calibration import CalibrationSet
from edgepose.converters.model_outputs import keras_probabilities
from edgepose.converters.options import ConvertOptions
from edgepose.converters.source import Source
from edgepose.errors import ConfigError
from edgepose.fileio import write_bytes
from edgepose.rundir import load_inputs
from edgepose.runtime.input_contract import InputContract


@dataclass
class Reference:
    """The Keras model's outputs on the test split: what every mode's drift is measured on.

    ``x``: ``N x ...`` raw inputs as the device sees them; ``y``: ``N`` labels;
    ``probabilities``: ``N x classes`` float32 Keras outputs on ``contract.normalize(x)``.
    ``N`` is 0 for a bare model or a run without a test split.
    """

    x: np.ndarray
    y: np.ndarray
    probabilities: np.ndarray

    @property
    def accuracy(self) -> float | None:
        """Keras top-1 accuracy on the test split (0..1), None without test samples."""
        if not len(self.x):
            return None
        return float(np.mean(self.probabilities.argmax(1) == self.y))


def reference_outputs(src: Source, model, contract: InputContract,
                      shape: tuple[int, ...]) -> Reference:
    """Run the Keras model on the test split; save ``reference_outputs.npz`` for bench.

    ``shape`` is the model's input shape without the batch axis. The npz (``paths``,
    ``probabilities``, ``labels``) is written atomically, only when there are test
    samples. Raises DataError when a test sample cannot be decoded.
    """
    x_test = np.zeros((0, *shape), dtype=np.float32)
    y_test = np.zeros((0,), dtype=np.int64)
    test_paths: list[str] = []
    if src.splits is not None and src.splits.samples("test"):
        test = src.splits.samples("test")
        x_test, y_test = load_inputs(src.splits, test, src.config)
        test_paths = [s.path for s in test]
    keras_test = keras_probabilities(model, contract.normalize(x_test))
    if len(x_test):
        buffer = _io.BytesIO()
        np.savez(buffer, paths=np.array(test_paths), probabilities=keras_test, labels=y_test)
        write_bytes(src.folder.reference_outputs_path, buffer.getvalue())
    return Reference(x_test, y_test, keras_test)


def calibration_set(src: Source, shape: tuple[int, ...], contract: InputContract,
                    options: ConvertOptions, progress: Callable[[str], None]
                    ) -> CalibrationSet:
    """The calibration set in model values (from ``options.calib_data`` or the train split).

    ``shape`` is the model's input shape without the batch axis; ``calib_samples``
    samples are drawn stratified with ``options.seed``.

    Raises:
        ConfigError: a bare model (not in a run directory) without ``calib_data``.
        DataError, ModelError: the samples do not fit the model's input shape or
            the input contract (e.g. 0..255 pixels for a model stated to take 0..1).
    """
    calib_data, calib_samples, seed = options.calib_data, options.calib_samples, options.seed
    if calib_data is not None:
        calibration = calib.from_folder(calib_data, src.config, calib_samples, seed)
    elif src.splits is not None:
        calibration = calib.from_run(src.splits, src.config, calib_samples, seed)
    else:
        raise ConfigError(f"{src.model_path} is not in a run directory: pass --calib-data "
                          "for calibrated modes")
    calibration.check_shape(shape, src.model_path)
    calibration = calibration.to_model_values(contract)
    calibration.check_values(contract, calib_data if calib_data is not None
                             else src.folder.splits_path)
    progress(f"calibration: {calibration.description}")
    return calibration
