"""One exception type per kind of user mistake.

The CLI turns any :class:`EdgeposeError` into a one-line message on stderr and
a non-zero exit code; Python callers catch the specific subclass they care about.
"""

from __future__ import annotations

from pathlib import Path


class EdgeposeError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self.message = message
        super().__init__(f"{path}: {message}" if path is not None else message)


class DataError(EdgeposeError):
    """A dataset, image, keypoint file or split is missing, empty or malformed."""


class ImageTooLarge(DataError):
    """An image has more pixels than edgepose decodes; refused before decoding.

    The cap is :data:`edgepose.runtime.preprocess.MAX_IMAGE_PIXELS`. The service
    answers HTTP 413 and skips such a frame; the CLI prints one line.
    """


class ModelError(EdgeposeError):
    """A model file is missing, corrupt, of the wrong kind or incompatible."""


class ConversionError(EdgeposeError):
    """The TFLite converter refused a model, or calibration data does not fit it."""


class RuntimeNotAvailable(EdgeposeError):
    """No TFLite interpreter package is installed, or it cannot run this model."""


class ConfigError(EdgeposeError):
    """A command-line option or configuration value is invalid."""


class DriftExceeded(EdgeposeError):
    """A converted model lost more accuracy than the allowed budget."""

    exit_code = 3


class RegressionDetected(EdgeposeError):
    """A benchmark result is worse than its stored baseline beyond the tolerance."""

    exit_code = 3
