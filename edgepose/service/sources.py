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

import importlib
import logging
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepose.errors import ConfigError, DataError, RuntimeNotAvailable
from edgepose.runtime.preprocess import IMAGE_SUFFIXES, load_rgb

log = logging.getLogger(__name__)

SOURCE_KINDS = ("picamera2", "opencv", "video", "dir", "test")


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


class _Pacer:
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
        self._pacer = _Pacer(fps)
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
        self._pacer = _Pacer(fps)
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


def _import_cv2():
    try:
        return importlib.import_module("cv2")
    except ImportError:
        return None


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
        self._cv2 = _import_cv2()
        self._av = None
        if self._cv2 is None:
            try:
                self._av = importlib.import_module("av")
            except ImportError:
                raise RuntimeNotAvailable("reading video files needs OpenCV or PyAV: "
                                          "pip install edgepose[video]") from None
        self._open()
        native = self.native_fps
        self._pacer = _Pacer(native if fps is None else fps)
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


class OpenCVCameraSource(FrameSource):
    """A USB (UVC) camera through OpenCV's V4L2 backend.

    ``device`` is an index (``0`` is ``/dev/video0``) or a device path. The
    driver's queue is shrunk to one buffer where supported so that a slow
    consumer sees a fresh picture rather than one from seconds ago. A camera
    that is unplugged makes :meth:`read` raise :class:`SourceFailed`.
    """

    name = "opencv"

    def __init__(self, device: int | str = 0, width: int = 640, height: int = 480):
        cv2 = _import_cv2()
        if cv2 is None:
            raise RuntimeNotAvailable("USB cameras need OpenCV: pip install edgepose[video]")
        self.device = device
        self._cap = cv2.VideoCapture(device)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceFailed(f"cannot open camera {device!r} (is it plugged in, and is the "
                               "user in the 'video' group?)")
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def read(self) -> np.ndarray:
        """The next camera frame, converted from BGR to RGB ``H x W x 3`` uint8.

        Raises:
            SourceFailed: the camera delivered no frame.
        """
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            raise SourceFailed(f"camera {self.device!r} stopped delivering frames")
        return np.ascontiguousarray(bgr[..., ::-1])

    def close(self) -> None:
        self._cap.release()


def yuv420_to_rgb(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """Convert a picamera2 ``YUV420`` capture to an RGB ``height x width x 3`` array.

    Picamera2 returns a YUV420 stream as a 2-D array ``height * 3 / 2`` rows by
    ``stride`` bytes: the full-size Y plane, then the quarter-size U and V
    planes packed two rows per stride. Rows may carry padding past ``width``.
    The conversion is full-range BT.601 (the sYCC colour space picamera2's
    preview configuration uses).
    """
    stride = array.shape[1]
    flat = array.reshape(-1)
    y_size, c_stride = height * stride, stride // 2
    c_size = (height // 2) * c_stride
    y = flat[:y_size].reshape(height, stride)[:, :width].astype(np.float32)
    u = flat[y_size:y_size + c_size].reshape(height // 2, c_stride)[:, :width // 2]
    v = flat[y_size + c_size:y_size + 2 * c_size].reshape(height // 2, c_stride)[:, :width // 2]
    u = np.repeat(np.repeat(u.astype(np.float32) - 128.0, 2, axis=0), 2, axis=1)
    v = np.repeat(np.repeat(v.astype(np.float32) - 128.0, 2, axis=0), 2, axis=1)
    rgb = np.empty((height, width, 3), dtype=np.float32)
    rgb[..., 0] = y + 1.402 * v
    rgb[..., 1] = y - 0.344136 * u - 0.714136 * v
    rgb[..., 2] = y + 1.772 * u
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def _even(size: tuple[int, int]) -> tuple[int, int]:
    """libcamera wants even widths and heights; round up."""
    return int(size[0]) + int(size[0]) % 2, int(size[1]) + int(size[1]) % 2


class Picamera2Source(FrameSource):
    """A Raspberry Pi camera module through picamera2 (libcamera).

    The camera runs two streams: ``main`` at ``main_size`` (XBGR8888) and a
    low-resolution ``lores`` stream at ``size``, scaled by the ISP in hardware
    so the CPU never resizes a full frame. The service reads ``lores``: size it
    for the model (e.g. 224x224 for an image classifier). On a Pi 4 and earlier
    the lores stream can only be YUV420, so frames are converted to RGB here;
    the ISP scales the whole field of view into it (the aspect ratio is not kept).

    Each capture waits at most ``timeout`` seconds: a camera whose ribbon cable
    comes loose never delivers another frame, and the service must notice that
    and reopen it instead of hanging. picamera2 and libcamera come with Raspberry
    Pi OS (``sudo apt install python3-picamera2``); create the venv with
    ``--system-site-packages`` to see them.
    """

    name = "picamera2"

    def __init__(self, size: tuple[int, int] = (320, 240), main_size: tuple[int, int] = (640, 480),
                 stream: str = "lores", camera_num: int = 0, hflip: bool = False,
                 vflip: bool = False, timeout: float = 2.0):
        try:
            picamera2 = importlib.import_module("picamera2")
            libcamera = importlib.import_module("libcamera")
        except ImportError:
            raise RuntimeNotAvailable("picamera2 is not installed: on Raspberry Pi OS run "
                                      "`sudo apt install python3-picamera2` and create the venv "
                                      "with --system-site-packages") from None
        if stream not in ("lores", "main"):
            raise ConfigError(f"picamera2 stream must be 'lores' or 'main', not {stream!r}")
        size, main_size = _even(size), _even(main_size)
        # The lores stream may not be larger than main.
        main_size = (max(main_size[0], size[0]), max(main_size[1], size[1]))
        self.stream, self.timeout = stream, timeout
        self.camera = picamera2.Picamera2(camera_num)
        try:
            config = self.camera.create_preview_configuration(
                main={"size": main_size, "format": "XBGR8888"},
                lores={"size": size, "format": "YUV420"},
                transform=libcamera.Transform(hflip=int(hflip), vflip=int(vflip)),
                display=None, buffer_count=4)
            self.camera.configure(config)
            # configure() may adjust sizes; the stream configuration has the final ones.
            self._lores = self.camera.stream_configuration("lores")
            self.camera.start()
        except Exception:
            self.camera.close()
            raise

    def read(self) -> np.ndarray:
        """The next camera frame, RGB ``H x W x 3`` uint8.

        Raises:
            SourceFailed: no frame within ``timeout`` seconds.
        """
        job = self.camera.capture_array(self.stream, wait=False)
        try:
            array = self.camera.wait(job, timeout=self.timeout)
        except TimeoutError:
            raise SourceFailed(f"the camera delivered no frame in {self.timeout:g} s") from None
        if self.stream == "main":
            return np.ascontiguousarray(array[..., :3])  # XBGR8888 is R, G, B, X in memory
        width, height = self._lores["size"]
        return yuv420_to_rgb(array, width, height)

    def close(self) -> None:
        camera, self.camera = getattr(self, "camera", None), None
        if camera is not None:
            try:
                camera.stop()
            finally:
                camera.close()


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
