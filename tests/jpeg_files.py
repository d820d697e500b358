"""Photo-like JPEGs and libjpeg's own decode of them, for the decode-path tests."""

from __future__ import annotations

import io
from pathlib import Path
from unittest import mock

import numpy as np
from PIL import Image, ImageOps


def camera_like(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Seeded random colours upscaled bicubic plus grain: smooth, asymmetric, and with the
    fine detail that gives a JPEG's AC coefficients real content, like a camera photo."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    smooth = np.asarray(small.resize(size, Image.Resampling.BICUBIC), dtype=np.float64)
    return Image.fromarray(np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255)
                           .astype(np.uint8))


def libjpeg_decode(source: bytes | Path, reduce_to: tuple[int, int]) -> np.ndarray:
    """The whole file through libjpeg at Pillow's draft scale for ``reduce_to`` (as shown,
    after EXIF rotation), then ``ImageOps.exif_transpose`` (a copy) and RGB: the decode
    edgepose's own path must reproduce exactly."""
    opened = io.BytesIO(source) if isinstance(source, bytes) else source
    with Image.open(opened) as img:
        width, height = reduce_to
        if img.getexif().get(0x0112) in (5, 6, 7, 8):
            width, height = height, width
        img.draft(None, (width, height))
        img.load()
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def spied_load(path: Path, reduce_to: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """``load_rgb`` with the progressive rewrite watched: (picture, whether a rewritten file
    was made and decoded)."""
    from edgepose.runtime import jpeg_scans, preprocess

    made: list[bytes | None] = []

    def rewrite(data: bytes) -> bytes | None:
        made.append(jpeg_scans.skip_unused_ac_scans(data))
        return made[-1]

    with mock.patch.object(preprocess, "skip_unused_ac_scans", rewrite):
        picture = np.asarray(preprocess.load_rgb(path, reduce_to=reduce_to))
    return picture, len(made) == 1 and made[0] is not None
