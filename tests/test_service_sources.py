"""Frame sources: real files, real decoding, and picamera2 through stand-in modules."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from edgepose.errors import ConfigError, DataError
from edgepose.service.sources import (
    BadFrame,
    DirectorySource,
    Picamera2Source,
    SourceFailed,
    TestPatternSource,
    VideoFileSource,
    open_source,
    parse_source,
    yuv420_to_rgb,
)
from tests.service_fixtures import photos


def test_test_pattern_frames_are_rgb_uint8_and_move():
    source = TestPatternSource(64, 48, fps=0, frames=3)
    frames = list(source)
    assert len(frames) == 3
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[1])


def test_video_file_frames_match_the_photos_in_rgb_order(service_video):
    with VideoFileSource(service_video, fps=0) as source:
        assert source.native_fps == pytest.approx(30.0)
        frames = list(source)
    assert len(frames) == 40
    originals = photos()
    for i, original in enumerate(originals):
        decoded = frames[i * 10].astype(np.int16)
        # MJPG is lossy, but a BGR/RGB swap would be far off.
        assert np.abs(decoded - original).mean() < 12
        assert np.abs(decoded - original[..., ::-1]).mean() > 2 * np.abs(decoded - original).mean()


def test_video_file_plays_at_its_own_frame_rate_by_default(service_video):
    import time

    with VideoFileSource(service_video) as source:
        start = time.monotonic()
        for _ in range(7):
            source.read()
        elapsed = time.monotonic() - start
    assert elapsed >= 6 / 30.0 * 0.9


def test_video_file_with_loop_starts_over(service_video):
    with VideoFileSource(service_video, loop=True, fps=0) as source:
        frames = [source.read() for _ in range(45)]
    assert np.abs(frames[40].astype(int) - frames[0]).mean() < 1


def test_directory_source_skips_a_corrupt_image_and_goes_on(photo_dir):
    source = DirectorySource(photo_dir)
    got, bad = [], []
    while True:
        try:
            got.append(source.read())
        except BadFrame as exc:
            bad.append(exc)
        except StopIteration:
            break
    assert len(got) == 4 and len(bad) == 1
    assert "b_corrupt.jpg" in str(bad[0])


def test_directory_source_with_loop_never_ends(photo_dir):
    source = DirectorySource(photo_dir, loop=True)
    n = 0
    for _ in range(12):
        try:
            source.read()
            n += 1
        except BadFrame:
            pass
    assert n >= 9


def test_source_specs_are_checked_before_anything_opens(tmp_path):
    assert parse_source("opencv").target == "0"
    assert str(parse_source("opencv:/dev/video2")) == "opencv:/dev/video2"
    with pytest.raises(ConfigError, match="unknown source"):
        parse_source("webcam")
    with pytest.raises(DataError, match="video file not found"):
        parse_source(f"video:{tmp_path / 'missing.avi'}")
    with pytest.raises(ConfigError, match="needs a path"):
        parse_source("dir:")
    assert open_source("test", fps=0).read().shape == (240, 320, 3)


def _rgb_to_i420(rgb: np.ndarray, stride: int) -> np.ndarray:
    """What libcamera delivers for YUV420 in the sYCC colour space (full-range BT.601)."""
    h, w, _ = rgb.shape
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    sub = (lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)))  # noqa: E731
    out = np.zeros(h * stride + 2 * (h // 2) * (stride // 2), dtype=np.uint8)
    planes = np.zeros((h, stride), dtype=np.uint8)
    planes[:, :w] = np.clip(np.round(y), 0, 255)
    out[:h * stride] = planes.reshape(-1)
    for k, c in enumerate((sub(u), sub(v))):
        plane = np.zeros((h // 2, stride // 2), dtype=np.uint8)
        plane[:, :w // 2] = np.clip(np.round(c), 0, 255)
        start = h * stride + k * (h // 2) * (stride // 2)
        out[start:start + plane.size] = plane.reshape(-1)
    return out.reshape(h * 3 // 2, stride)


def test_yuv420_with_row_padding_converts_back_to_the_photo():
    rgb = photos((64, 48))[1]
    i420 = _rgb_to_i420(rgb, stride=96)
    back = yuv420_to_rgb(i420, 64, 48)
    assert back.shape == (48, 64, 3)
    assert np.abs(back.astype(int) - rgb).mean() < 6


class _StandInPicamera2:
    """Records calls the way the real Picamera2 is used; serves frames from a photo."""

    instances: list = []
    hang_after: int | None = None

    def __init__(self, camera_num=0):
        self.camera_num = camera_num
        self.calls: list[str] = []
        self.camera_config = None
        self.started = False
        self.captures = 0
        _StandInPicamera2.instances.append(self)

    def create_preview_configuration(self, main=None, lores=None, transform=None, display="main",
                                     buffer_count=4, **kwargs):
        self.calls.append("create_preview_configuration")
        return {"main": dict(main), "lores": dict(lores) if lores else None,
                "transform": transform, "display": display, "buffer_count": buffer_count}

    def configure(self, config):
        self.calls.append("configure")
        assert config["lores"]["format"] == "YUV420"
        w, h = config["lores"]["size"]
        assert w <= config["main"]["size"][0] and h <= config["main"]["size"][1]
        assert w % 2 == 0 and h % 2 == 0
        config["lores"]["stride"] = w + 32  # libcamera pads rows
        self.camera_config = config

    def stream_configuration(self, name="main"):
        return self.camera_config[name]

    def start(self):
        self.calls.append("start")
        self.started = True

    def capture_array(self, name="main", wait=None):
        assert wait is False
        return ("job", name)

    def wait(self, job, timeout=None):
        assert timeout is not None
        if self.hang_after is not None and self.captures >= self.hang_after:
            raise TimeoutError
        self.captures += 1
        w, h = self.camera_config["lores"]["size"]
        return _rgb_to_i420(photos((w, h))[0], self.camera_config["lores"]["stride"])

    def stop(self):
        self.calls.append("stop")

    def close(self):
        self.calls.append("close")


@pytest.fixture
def picamera2_modules(monkeypatch):
    libcamera = types.ModuleType("libcamera")

    class Transform:
        def __init__(self, hflip=0, vflip=0):
            self.hflip, self.vflip = hflip, vflip

    libcamera.Transform = Transform
    picamera2 = types.ModuleType("picamera2")
    picamera2.Picamera2 = _StandInPicamera2
    _StandInPicamera2.instances = []
    _StandInPicamera2.hang_after = None
    monkeypatch.setitem(sys.modules, "libcamera", libcamera)
    monkeypatch.setitem(sys.modules, "picamera2", picamera2)
    return _StandInPicamera2


def test_picamera2_reads_the_lores_stream_sized_for_the_model_as_rgb(picamera2_modules):
    source = open_source("picamera2", size=(33, 32), vflip=True)
    frame = source.read()
    camera = picamera2_modules.instances[0]
    assert camera.camera_config["lores"]["size"] == (34, 32)  # rounded up to even
    assert camera.camera_config["transform"].vflip == 1
    assert frame.shape == (32, 34, 3) and frame.dtype == np.uint8
    assert np.abs(frame.astype(int) - photos((34, 32))[0]).mean() < 8
    source.close()
    assert camera.calls == ["create_preview_configuration", "configure", "start", "stop",
                            "close"]


def test_picamera2_that_stops_delivering_raises_source_failed(picamera2_modules):
    picamera2_modules.hang_after = 1
    source = Picamera2Source(size=(32, 32), timeout=0.1)
    source.read()
    with pytest.raises(SourceFailed, match="no frame"):
        source.read()
    source.close()
