"""Keep TensorFlow's start-up chatter off the user's terminal (host side only).

TensorFlow 2.21 prints its oneDNN and absl banners straight to file descriptor 2
on import, whatever ``TF_CPP_MIN_LOG_LEVEL`` says, and the TFLite converter
writes MLIR diagnostics there too. Both are captured at the descriptor level and
shown only when something fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class CapturedLog:
    text: str = ""


@contextlib.contextmanager
def captured_output() -> Iterator[CapturedLog]:
    """Send everything written to fds 1 and 2 (Python and C++) to a buffer."""
    log = CapturedLog()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield log
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.seek(0)
            log.text = sink.read().decode("utf-8", "replace")


def import_tensorflow():
    """Import TensorFlow (and Keras) once, quietly; on failure show what it printed."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with captured_output() as log:
            import keras  # noqa: F401
            import tensorflow
    except ImportError:
        sys.stderr.write(log.text)
        raise
    return tensorflow
