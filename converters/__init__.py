"""Host-side TFLite converters (TensorFlow is imported inside functions only).

``convert_run(run_dir, modes) -> ConversionReport`` is the entry point; see
:mod:`converters.convert`. Modes are data in :mod:`converters.modes`.
"""

from converters.convert import convert_run, resolve_source
from converters.modes import DEFAULT_MODES, MODES
from converters.report import ConversionReport, ModeResult

__all__ = ["DEFAULT_MODES", "MODES", "ConversionReport", "ModeResult", "convert_run",
           "resolve_source"]
