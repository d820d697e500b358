"""Where frames come from: a camera, a video file, a folder of images, or a test pattern.

Every source is an iterator of RGB frames (``H x W x 3`` uint8 numpy arrays)
with a ``close()``, whatever sits behind it::

    source = open_source("video:clip.avi")
    for frame in source:
        ...
    source.close()

A source signals three different things, and the service treats them apart:

* the iteration ends (``StopIteration``): a file or folder is finished;
* :class:`BadFrame`: one frame could not be decoded; skip it and read on;
* any other exception: the device failed or went away; close the source and
  open a new one (the service does that with a backoff).

Specs understood by :func:`parse_source`: ``picamera2`` (or ``picamera2:N``),
``opencv:0`` / ``opencv:/dev/video0``, ``video:FILE``, ``dir:FOLDER`` and ``test``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgepose.errors import ConfigError, DataError
from edgepose.service.camera_sources import OpenCVCameraSource, Picamera2Source, yuv420_to_rgb
from edgepose.service.file_sources import DirectorySource, TestPatternSource, VideoFileSource
from edgepose.service.frame_source import BadFrame, FrameSource, SourceFailed

# The sources and their errors are importable from here too: this module is where a
# ``--source`` becomes one of them.
__all__ = ["SOURCE_KINDS", "BadFrame", "DirectorySource", "FrameSource", "OpenCVCameraSource",
           "Picamera2Source", "SourceFailed", "SourceSpec", "TestPatternSource",
           "VideoFileSource", "open_source", "parse_source", "source_factory", "yuv420_to_rgb"]

SOURCE_KINDS = ("picamera2", "opencv", "video", "dir", "test")


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source`` value: ``kind`` and its ``target`` (device, file or folder)."""

    kind: str
    target: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else self.kind


def parse_source(spec: str) -> SourceSpec:
    """Parse and check a ``--source`` value; raises ConfigError or DataError.

    Raises:
        ConfigError: an unknown kind, a kind without its path, or a picamera2 target that is not a
            number.
        DataError: the folder or video file does not exist.
    """
    kind, _, target = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"unknown source {spec!r}: use one of picamera2, opencv:0, "
                          "opencv:/dev/videoN, video:FILE, dir:FOLDER, test")
    if kind in ("video", "dir") and not target:
        raise ConfigError(f"source {kind}: needs a path, e.g. {kind}:/path")
    if kind == "video" and not Path(target).is_file():
        raise DataError("video file not found", target)
    if kind == "dir" and not Path(target).is_dir():
        raise DataError("folder not found", target)
    if kind == "opencv" and not target:
        target = "0"
    if kind == "picamera2" and target and not target.isdigit():
        raise ConfigError(f"picamera2 takes a camera number (picamera2:0), not {target!r}")
    return SourceSpec(kind, target)


def source_factory(spec: str | SourceSpec, size: tuple[int, int] = (320, 240),
                   loop: bool = False, fps: float | None = None, hflip: bool = False,
                   vflip: bool = False) -> Callable[[], FrameSource]:
    """Check ``spec`` now; return a function that opens a fresh source each call.

    ``size`` is ``(width, height)`` wanted by the model, used where the device
    can scale for free (the Pi camera's lores stream). ``fps`` paces file,
    folder and test sources (None: their natural rate).
    """
    parsed = spec if isinstance(spec, SourceSpec) else parse_source(spec)

    def open_it() -> FrameSource:
        kind, target = parsed.kind, parsed.target
        if kind == "picamera2":
            return Picamera2Source(size=size, camera_num=int(target or 0), hflip=hflip,
                                   vflip=vflip)
        if kind == "opencv":
            return OpenCVCameraSource(int(target) if target.isdigit() else target)
        if kind == "video":
            return VideoFileSource(target, loop=loop, fps=fps)
        if kind == "dir":
            return DirectorySource(target, loop=loop, fps=fps, reduce_to=size)
        return TestPatternSource(fps=30.0 if fps is None else fps)

    return open_it


def open_source(spec: str, **kwargs) -> FrameSource:
    """Open one source from a spec (see :func:`source_factory` for the options)."""
    return source_factory(spec, **kwargs)()
