"""Frame sources that need no camera: a test pattern, a folder of images, a video file.

Each is a :class:`~edgepose.service.frame_source.FrameSource` (RGB ``H x W x 3``
uint8 frames); ``fps`` paces them like a camera would deliver frames.
"""

from __future__ import annotations

import importlib
import logging
import stat
from pathlib import Path

import numpy as np

from edgepose.errors import DataError, RuntimeNotAvailable
from edgepose.runtime.preprocess import IMAGE_SUFFIXES, load_rgb
from edgepose.service.frame_source import BadFrame, FrameSource, Pacer, SourceFailed, import_cv2

log = logging.getLogger(__name__)


class TestPatternSource(FrameSource):
    """A moving synthetic pattern: colour bars with a sliding gradient and a frame counter.

    Needs no hardware; useful to check an installation end to end
    (``edgepose serve --source test``). Deterministic: frame ``n`` is always the same.
    """

    name = "test"
    __test__ = False  # not a pytest class

    def __init__(self, width: int = 320, height: int = 240, fps: float | None = 30.0,
                 frames: int | None = None):
        self.width, self.height, self.frames = width, height, frames
        self._pacer = Pacer(fps)
        self.frame_period = self._pacer.period
        self._n = 0
        bars = np.array([[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0],
                         [255, 0, 255], [255, 0, 0], [0, 0, 255], [0, 0, 0]], dtype=np.uint8)
        columns = np.arange(width) * len(bars) // width
        self._bars = np.broadcast_to(bars[columns], (height, width, 3))
        self._ramp = (np.arange(width, dtype=np.int32) * 255 // max(width - 1, 1))

    def read(self) -> np.ndarray:
        """The next test-pattern frame (colour bars, a moving ramp and square).

        Raises:
            StopIteration: after ``frames`` frames (never when ``frames`` is None).
        """
        if self.frames is not None and self._n >= self.frames:
            raise StopIteration
        self._pacer.wait()
        frame = np.array(self._bars)
        band = slice(self.height * 2 // 3, self.height)
        frame[band] = ((self._ramp + 4 * self._n) % 256).astype(np.uint8)[None, :, None]
        # A bright square that moves, so consecutive frames differ.
        size = max(self.height // 6, 2)
        x = (self._n * 3) % max(self.width - size, 1)
        frame[:size, x:x + size] = (255, 128, 0)
        self._n += 1
        return frame


class DirectorySource(FrameSource):
    """Every image in a folder and its subfolders, in path order; ``loop`` starts over.

    A folder of class subfolders (``cats/001.jpg``, ``dogs/002.jpg``: the layout
    every other edgepose command reads) works as well as a flat one; hidden
    files and folders are skipped. :attr:`item` is the file's path relative to
    the folder. A file that cannot be decoded for any reason (corrupt, empty,
    over the pixel cap, vanished, not a regular file such as a named pipe)
    raises :class:`BadFrame` naming it, and the next read goes on with the next
    file. ``fps`` paces the frames like a camera would (None: as fast as they
    decode). ``reduce_to`` ``(width, height)`` decodes JPEGs reduced to about
    the model's size (see :func:`edgepose.runtime.preprocess.load_rgb`).
    """

    name = "dir"

    def __init__(self, folder: str | Path, loop: bool = False, fps: float | None = None,
                 reduce_to: tuple[int, int] | None = None):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DataError("not a folder", self.folder)
        self.reduce_to = reduce_to
        self.files = sorted((p for p in self.folder.rglob("*")
                             if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                             and not any(part.startswith(".")
                                         for part in p.relative_to(self.folder).parts)),
                            key=lambda p: p.relative_to(self.folder).as_posix())
        if not self.files:
            raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder", self.folder)
        self.loop = loop
        self.finite = not loop
        self._pacer = Pacer(fps)
        self.frame_period = self._pacer.period
        self._index = 0

    def read(self) -> np.ndarray:
        """The next image of the folder, decoded to RGB ``H x W x 3`` uint8.

        Raises:
            StopIteration: after the last file, unless ``loop``.
            BadFrame: this file cannot be decoded, vanished, or is not a regular file; the next read
                goes on with the next file.
        """
        if self._index >= len(self.files):
            if not self.loop:
                raise StopIteration
            self._index = 0
        path = self.files[self._index]
        self._index += 1
        self.item = path.relative_to(self.folder).as_posix()
        self._pacer.wait()
        try:
            # Opening a named pipe would block until a writer comes: refuse what is
            # not a regular file now, whatever was there when the folder was listed.
            if not stat.S_ISREG(path.stat().st_mode):
                raise DataError("not a regular file", path)
            return np.asarray(load_rgb(path, self.reduce_to) if self.reduce_to
                              else load_rgb(path))
        except DataError as exc:
            raise BadFrame(exc.message, path) from None
        except FileNotFoundError:
            raise BadFrame("file vanished", path) from None
        except Exception as exc:  # any other decoder failure is this file's, not the folder's
            raise BadFrame(f"cannot decode ({exc.__class__.__name__}: {exc})", path) from None


class VideoFileSource(FrameSource):
    """Frames of a video file, decoded by OpenCV (or PyAV when OpenCV is missing).

    ``fps`` paces playback: None plays at the file's own frame rate, as a camera
    would deliver it; 0 decodes as fast as possible. With ``loop`` the file
    starts over at its end. Install a decoder with ``pip install edgepose[video]``.
    """

    name = "video"

    def __init__(self, path: str | Path, loop: bool = False, fps: float | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError("video file not found", self.path)
        self.loop = loop
        self.finite = not loop
        self._cv2 = import_cv2()
        self._av = None
        if self._cv2 is None:
            try:
                self._av = importlib.import_module("av")
            except ImportError:
                raise RuntimeNotAvailable("reading video files needs OpenCV or PyAV: "
                                          "pip install edgepose[video]") from None
        self._open()
        native = self.native_fps
        self._pacer = Pacer(native if fps is None else fps)
        self.frame_period = self._pacer.period
        self._index = -1

    def _open(self) -> None:
        if self._cv2 is not None:
            self._cap = self._cv2.VideoCapture(str(self.path))
            if not self._cap.isOpened():
                raise DataError("OpenCV cannot open this video file", self.path)
        else:
            try:
                self._container = self._av.open(str(self.path))
            except Exception as exc:  # PyAV raises its own error hierarchy
                raise DataError(f"PyAV cannot open this video file ({exc})", self.path) from None
            self._frames = self._container.decode(video=0)

    @property
    def native_fps(self) -> float | None:
        """The frame rate stored in the file, or None when it does not say."""
        if self._cv2 is not None:
            value = float(self._cap.get(self._cv2.CAP_PROP_FPS) or 0.0)
        else:
            rate = self._container.streams.video[0].average_rate
            value = float(rate) if rate else 0.0
        return value if 0 < value < 1000 else None

    def _decode(self) -> np.ndarray | None:
        if self._cv2 is not None:
            ok, bgr = self._cap.read()
            return np.ascontiguousarray(bgr[..., ::-1]) if ok else None
        try:
            return next(self._frames).to_ndarray(format="rgb24")
        except StopIteration:
            return None

    def read(self) -> np.ndarray:
        """The next decoded frame of the video, RGB ``H x W x 3`` uint8.

        Raises:
            StopIteration: after the last frame, unless ``loop``.
            SourceFailed: looping, and the reopened file has no decodable frame.
        """
        frame = self._decode()
        self._index += 1
        if frame is None and self.loop:
            self.close()
            self._open()
            self._index = 0
            frame = self._decode()
            if frame is None:
                raise SourceFailed(f"{self.path}: no decodable frames")
        if frame is None:
            raise StopIteration
        self.item = self._index
        self._pacer.wait()
        return frame

    def close(self) -> None:
        if self._cv2 is not None and getattr(self, "_cap", None) is not None:
            self._cap.release()
        elif getattr(self, "_container", None) is not None:
            self._container.close()
