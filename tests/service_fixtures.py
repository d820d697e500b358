"""Fixtures for the service tests: a real video file, real photos, a notify socket.

The video is an MJPG AVI written with OpenCV's VideoWriter from real
photographs in ``skimage.data``; the models come from ``tflite_models``
(tiny real TFLite classifiers built once per session).
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from tests.tflite_models import tiny_run  # noqa: F401  (re-exported fixture)

ROOT = Path(__file__).resolve().parent.parent
POSE_LANDMARK = ROOT / ".cache" / "assets" / "pose_landmark_full.tflite"
POSE_DETECTOR = ROOT / ".cache" / "assets" / "pose_detection.tflite"
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photos(size: tuple[int, int] = (160, 120)) -> list[np.ndarray]:
    """Real RGB photographs from skimage.data, resized to ``(width, height)``."""
    from PIL import Image
    from skimage import data

    return [np.asarray(Image.fromarray(getattr(data, name)()).convert("RGB").resize(size))
            for name in PHOTOS]


def write_video(path: Path, frames_per_photo: int = 10, size: tuple[int, int] = (160, 120),
                fps: float = 30.0) -> Path:
    """An MJPG .avi cycling through the photos (OpenCV's VideoWriter)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened(), "OpenCV cannot write MJPG"
    for rgb in photos(size):
        for _ in range(frames_per_photo):
            writer.write(np.ascontiguousarray(rgb[..., ::-1]))
    writer.release()
    return path


@pytest.fixture(scope="session")
def service_video(tmp_path_factory) -> Path:
    """40 frames (4 photos x 10) of 160x120 MJPG at 30 fps."""
    return write_video(tmp_path_factory.mktemp("video") / "photos.avi")


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """The photos as JPEG files, plus one corrupt file between them (``b_corrupt.jpg``)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    for i, rgb in enumerate(photos()):
        Image.fromarray(rgb).save(folder / f"{'ac'[i % 2]}_{i}.jpg", quality=90)
    (folder / "b_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return folder


class NotifySocket:
    """A real unix datagram socket standing in for systemd's ``$NOTIFY_SOCKET``."""

    def __init__(self, abstract: bool = False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"edgepose-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            # AF_UNIX paths are limited to ~100 bytes: keep it short.
            self._dir = tempfile.mkdtemp(prefix="ep-")
            self.address = os.path.join(self._dir, "notify")
            self.sock.bind(self.address)
        self.messages: list[str] = []

    def receive(self, timeout: float = 5.0, until: str | None = None) -> list[str]:
        """Collect messages for up to ``timeout`` s (or until one contains ``until``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                break
            self.messages.append(data.decode())
            if until is not None and until in self.messages[-1]:
                break
        return self.messages

    def close(self) -> None:
        self.sock.close()
        if not self.address.startswith("@"):
            os.unlink(self.address)
            os.rmdir(self._dir)


@pytest.fixture
def notify_socket():
    sock = NotifySocket()
    yield sock
    sock.close()


def python_env(**extra: str) -> dict[str, str]:
    """The environment for a ``python -m edgepose`` subprocess."""
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env.pop("WATCHDOG_USEC", None)
    env.update(PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env


PYTHON = sys.executable
