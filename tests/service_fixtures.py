"""Fixtures for the service tests: a real video file, real photos, a notify socket.

The video is an MJPG AVI written with OpenCV's VideoWriter from real
photographs in ``skimage.data``; the models come from ``tflite_models``
(tiny real TFLite classifiers built once per session).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

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

# VmHWM: the child's own peak resident set. ru_maxrss is not used: after fork + exec a
# child reports the parent's peak (pytest's, often above what a decode adds).
_PEAK = ("import re, sys\n"
         "def peak():\n"
         "    with open('/proc/self/status') as f:\n"
         "        return int(re.search(r'VmHWM:\\s+(\\d+)', f.read())[1])\n")


def peak_growth_kib(setup: str, body: str, path: Path) -> int:
    """KiB by which a fresh Python process's peak memory grows while running ``body``
    (Python source; ``sys.argv[1]`` is ``path``), after ``setup`` (imports: their memory
    is not counted). Linux only (``/proc/self/status``)."""
    script = f"{_PEAK}{setup}\nbase = peak()\n{body}\nprint(peak() - base)\n"
    done = subprocess.run([PYTHON, "-c", script, str(path)], capture_output=True, text=True,
                          check=True, env=python_env())
    return int(done.stdout)


def multipart_upload(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body: a text field ``note``, then ``data`` as file ``field``.

    Returns ``(body, Content-Type header value)``; the boundary is fixed (seeded runs).
    """
    boundary = uuid.UUID(int=7).hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def trickle(sock: socket.socket, chunks: int, pause_s: float) -> bytes:
    """Send a request body 10 bytes every ``pause_s`` seconds until the server answers.

    The request head is sent by the caller. Stops after ``chunks`` chunks, or when the
    server closes the connection; returns what the server answered so far (b"" if
    nothing).
    """
    answer = b""
    for _ in range(chunks):
        try:
            sock.sendall(b"x" * 10)
        except OSError:
            break
        time.sleep(pause_s)
        sock.setblocking(False)
        try:
            answer += sock.recv(4096)
        except BlockingIOError:
            pass
        except OSError:
            break
        finally:
            sock.setblocking(True)
        if answer:
            break
    return answer


def write_huge_png(path: Path, width: int, height: int) -> Path:
    """A black 1-bit PNG of ``width x height`` written row by row (never held in memory).

    20000x20000 gives a file under 50 KB that Pillow would decode into 400 MB
    as mode "1" and 1.6 GB as RGB: the decompression bomb of issue 12.
    """
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\0" * (1 + (width + 7) // 8)  # filter byte 0, then packed 1-bit pixels
    packer = zlib.compressobj(9)
    compressed = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", compressed)
                     + chunk(b"IEND", b""))
    return path


def write_photo_jpeg(path: Path, size: tuple[int, int], orientation: int | None = None,
                     mode: str = "RGB") -> Path:
    """A real photograph (skimage's astronaut) scaled to ``size`` and saved as JPEG."""
    from PIL import Image
    from skimage import data

    image = Image.fromarray(data.astronaut()).convert(mode).resize(size,
                                                                  Image.Resampling.BILINEAR)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(path, quality=90, exif=exif.tobytes())
    return path
