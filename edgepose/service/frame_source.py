"""What every frame source is: an iterator of RGB frames with ``close()``, and how it fails.

A source signals three different things, and the service treats them apart:

* the iteration ends (``StopIteration``): a file or folder is finished;
* :class:`BadFrame`: one frame could not be decoded; skip it and read on;
* any other exception (:class:`SourceFailed` for a device that stops): close
  the source and open a new one (the service does that with a backoff).

The sources themselves are in :mod:`edgepose.service.file_sources` (test
pattern, folder, video file) and :mod:`edgepose.service.camera_sources` (USB
camera, Pi camera); :mod:`edgepose.service.sources` picks one from ``--source``.
"""

from __future__ import annotations

import importlib
import time

import numpy as np

from edgepose.errors import DataError


class BadFrame(DataError):
    """One frame could not be decoded; the source itself is still usable."""


class SourceFailed(RuntimeError):
    """The camera or file stopped delivering frames; the source must be reopened."""


class FrameSource:
    """Base class: an iterator of RGB frames with ``close()``.

    Subclasses implement :meth:`read`, which returns the next frame, raises
    ``StopIteration`` at the end of a finite source, :class:`BadFrame` for a
    frame that cannot be decoded, and anything else when the device fails.
    """

    name = "source"
    #: True for files and folders that end; False for cameras and the test pattern.
    finite = False
    #: The last frame's name in this source (a file name, a frame index), or None.
    item: str | int | None = None
    #: Seconds the source deliberately waits between frames (0: it does not pace).
    frame_period: float = 0.0

    def read(self) -> np.ndarray:
        """The next frame: RGB ``H x W x 3`` uint8.

        Raises:
            NotImplementedError: subclasses implement it.
        """
        raise NotImplementedError

    def __iter__(self) -> FrameSource:
        return self

    def __next__(self) -> np.ndarray:
        return self.read()

    def close(self) -> None:
        """Release the device or file; safe to call twice."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Pacer:
    """Sleep so that frames come out no faster than ``fps`` (None or 0: no pacing)."""

    def __init__(self, fps: float | None):
        self.period = 1.0 / fps if fps else 0.0
        self._next = 0.0

    def wait(self) -> None:
        if not self.period:
            return
        now = time.monotonic()
        if self._next > now:
            time.sleep(self._next - now)
            now = self._next
        # Never try to "catch up" after a stall: a camera would not either.
        self._next = max(self._next, now) + self.period


def import_cv2():
    """The ``cv2`` module, or None when OpenCV is not installed (it is an optional extra)."""
    try:
        return importlib.import_module("cv2")
    except ImportError:
        return None
