"""Decoding under a pixel cap, and JPEGs decoded reduced to about the model's size."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgepose.errors import DataError, ImageTooLarge
from edgepose.runtime.preprocess import (
    MAX_IMAGE_PIXELS,
    ImagePreprocessing,
    as_rgb_image,
    image_to_array,
    load_rgb,
)
from tests import service_fixtures as fx


def test_the_cap_is_well_under_pillows_own_limit():
    assert MAX_IMAGE_PIXELS == 40_000_000
    assert MAX_IMAGE_PIXELS < Image.MAX_IMAGE_PIXELS / 2


def test_a_20000_pixel_square_png_bomb_is_refused_with_its_size(tmp_path):
    path = fx.write_huge_png(tmp_path / "bomb.png", 20000, 20000)
    assert path.stat().st_size < 50_000
    with pytest.raises(ImageTooLarge) as info:
        load_rgb(path)
    assert str(info.value) == (f"{path}: image is 400.0 megapixels, over edgepose's decode "
                               "limit of 40 megapixels")


def test_a_12000_pixel_square_png_is_refused_from_its_header(tmp_path):
    path = fx.write_huge_png(tmp_path / "big.png", 12000, 12000)
    with pytest.raises(ImageTooLarge) as info:
        load_rgb(path)
    assert str(info.value) == (f"{path}: image is 12000x12000 = 144.0 megapixels, over "
                               "edgepose's decode limit of 40 megapixels")


def test_an_upload_over_the_cap_is_refused_under_its_given_name(tmp_path):
    data = fx.write_huge_png(tmp_path / "big.png", 8000, 6000).read_bytes()
    with pytest.raises(ImageTooLarge) as info:
        load_rgb(io.BytesIO(data), name="upload")
    assert str(info.value) == ("upload: image is 8000x6000 = 48.0 megapixels, over edgepose's "
                               "decode limit of 40 megapixels")


def test_a_lazily_opened_image_is_capped_too(tmp_path):
    path = fx.write_huge_png(tmp_path / "big.png", 7000, 6000)
    with Image.open(path) as img, pytest.raises(ImageTooLarge, match="42.0 megapixels"):
        as_rgb_image(img)


_IMPORTS = ("from edgepose.errors import ImageTooLarge\n"
            "from edgepose.runtime.preprocess import load_rgb\n")
_LOAD = "try:\n    load_rgb(sys.argv[1])\nexcept ImageTooLarge:\n    pass\n"


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="VmHWM is Linux's")
def test_the_cap_never_decodes_the_bomb(tmp_path):
    """Peak memory of a fresh process that refuses the bomb stays at its baseline; the same
    measurement sees an allowed 36-megapixel picture decoded (108 MB as RGB)."""
    bomb = fx.write_huge_png(tmp_path / "bomb.png", 12000, 12000)
    # KiB: nothing near the 144 MB of the 1-bit picture
    assert fx.peak_growth_kib(_IMPORTS, _LOAD, bomb) < 20_000
    allowed = fx.write_huge_png(tmp_path / "allowed.png", 6000, 6000)
    assert fx.peak_growth_kib(_IMPORTS, _LOAD, allowed) > 60_000  # seen when it happens


def test_a_large_jpeg_counts_its_reduced_size_against_the_cap(tmp_path):
    path = fx.write_photo_jpeg(tmp_path / "big.jpg", (7000, 6000), mode="L")
    with pytest.raises(ImageTooLarge, match="7000x6000 = 42.0 megapixels"):
        load_rgb(path)
    # For a 224x224 model libjpeg decodes it at 1/8 scale: 875x750, well under the cap.
    assert load_rgb(path, reduce_to=(224, 224)).size == (875, 750)


def test_a_12_megapixel_jpeg_decodes_at_one_eighth_for_a_224_model(tmp_path):
    path = fx.write_photo_jpeg(tmp_path / "photo.jpg", (4000, 3000))
    assert load_rgb(path, reduce_to=(224, 224)).size == (500, 375)
    assert load_rgb(path, reduce_to=(600, 400)).size == (1000, 750)  # 1/4 keeps >= 600x400
    assert load_rgb(path).size == (4000, 3000)


def test_reduction_follows_the_exif_rotation(tmp_path):
    """Stored 4000x3000, shown 3000x4000: the request is in shown (rotated) coordinates."""
    path = fx.write_photo_jpeg(tmp_path / "rotated.jpg", (4000, 3000), orientation=6)
    assert load_rgb(path, reduce_to=(224, 448)).size == (375, 500)


def test_reduced_decode_gives_the_same_model_input_as_a_full_decode(tmp_path):
    path = fx.write_photo_jpeg(tmp_path / "photo.jpg", (4000, 3000))
    for crop in ("none", "center"):
        spec = ImagePreprocessing(96, 96, crop=crop)
        reduced = image_to_array(path, spec).astype(int)
        full = image_to_array(np.asarray(load_rgb(path)), spec).astype(int)
        assert reduced.shape == (96, 96, 3)
        # DCT scaling averages like an area filter: a few levels apart, not a different picture.
        assert np.abs(reduced - full).mean() < 3.0


def test_a_corrupt_upload_is_a_data_error_under_its_name():
    with pytest.raises(DataError) as info:
        load_rgb(io.BytesIO(b"\xff\xd8\xff\xe0 not a jpeg"), name="upload")
    assert str(info.value) == "upload: not a readable image (OSError: Truncated File Read)"


def test_predict_refuses_an_oversized_image_in_one_line(tiny_run, tmp_path):  # noqa: F811
    path = fx.write_huge_png(tmp_path / "bomb.png", 20000, 20000)
    done = subprocess.run([sys.executable, "-m", "edgepose", "predict", str(tiny_run.fp32),
                           str(path)], capture_output=True, text=True, env=fx.python_env())
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: none of the 1 input(s) could be processed (first: {path}: image is 400.0 "
        "megapixels, over edgepose's decode limit of 40 megapixels)")


def test_an_unrecognised_upload_says_so_without_an_object_repr():
    with pytest.raises(DataError) as info:
        load_rgb(io.BytesIO(b"--boundary\r\nContent-Disposition: form-data"), name="upload")
    assert str(info.value) == "upload: not a readable image (no image format recognised)"
