"""Frame sources from a camera: a USB/V4L2 camera through OpenCV, the Pi camera through picamera2.

Each is a :class:`~edgepose.service.frame_source.FrameSource` (RGB ``H x W x 3``
uint8 frames) that raises :class:`~edgepose.service.frame_source.SourceFailed`
when the camera stops delivering; the service then reopens it.
"""

from __future__ import annotations

import importlib
import logging

import numpy as np

from edgepose.errors import ConfigError, RuntimeNotAvailable
from edgepose.service.frame_source import FrameSource, SourceFailed, import_cv2

log = logging.getLogger(__name__)


class OpenCVCameraSource(FrameSource):
    """A USB (UVC) camera through OpenCV's V4L2 backend.

    ``device`` is an index (``0`` is ``/dev/video0``) or a device path. The
    driver's queue is shrunk to one buffer where supported so that a slow
    consumer sees a fresh picture rather than one from seconds ago. A camera
    that is unplugged makes :meth:`read` raise :class:`SourceFailed`.
    """

    name = "opencv"

    def __init__(self, device: int | str = 0, width: int = 640, height: int = 480):
        cv2 = import_cv2()
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
