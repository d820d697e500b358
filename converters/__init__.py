"""Host-side TFLite converters (TensorFlow is imported inside functions only).

``convert_run(run_dir, modes) -> ConversionReport`` is the entry point; see
:mod:`edgepose.converters.convert`. Modes are data in :mod:`edgepose.converters.modes`.
"""

from edgepose.quiet import import_tensorflow

import_tensorflow()  # before anything else imports it, so its banner stays quiet

from edgepose.converters.convert import convert_run, resolve_source  # noqa: E402
from edgepose.converters.modes import DEFAULT_MODES, MODES  # noqa: E402
from edgepose.converters.report import ConversionReport, ModeResult  # noqa: E402

__all__ = ["DEFAULT_MODES", "MODES", "ConversionReport", "ModeResult", "convert_run",
           "resolve_source"]
