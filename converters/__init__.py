"""Host-side TFLite converters (TensorFlow is imported inside functions only).

``convert_run(run_dir, modes) -> ConversionReport`` is the entry point; see
:mod:`converters.convert`. Modes are data in :mod:`converters.modes`.
"""

from edgepose.quiet import import_tensorflow

import_tensorflow()  # before anything else imports it, so its banner stays quiet

from converters.convert import convert_run, resolve_source  # noqa: E402
from converters.modes import DEFAULT_MODES, MODES  # noqa: E402
from converters.report import ConversionReport, ModeResult  # noqa: E402

__all__ = ["DEFAULT_MODES", "MODES", "ConversionReport", "ModeResult", "convert_run",
           "resolve_source"]
