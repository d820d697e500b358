"""The reduced JPEG decode path: EXIF rotation without a copy, and the pixel cap for
progressive JPEGs (which libjpeg holds whole in memory at any decode scale)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgepose.errors import ImageTooLarge
from edgepose.runtime import preprocess
from edgepose.runtime.preprocess import ImagePreprocessing, as_rgb_image, image_to_array, load_rgb
from tests import service_fixtures as fx
from tests.jpeg_files import libjpeg_decode

PROGRESSIVE_WHY = "(libjpeg holds all of a progressive file in memory at any decode scale)"


def write_jpeg(path: Path, size: tuple[int, int], mode: str = "RGB", progressive: bool = False,
               orientation: int | None = None, seed: int = 0) -> Path:
    """A seeded picture (random 32x24 colours upscaled bicubic: smooth, asymmetric), as JPEG."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).convert(mode)
    picture = small.resize(size, Image.Resampling.BICUBIC)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    picture.save(path, quality=90, progressive=progressive, exif=exif.tobytes())
    return path


@pytest.mark.parametrize("orientation", [None, 1, 2, 3, 4, 5, 6, 7, 8])
def test_in_place_exif_rotation_gives_the_old_pixels_exactly(tmp_path, orientation):
    path = write_jpeg(tmp_path / "photo.jpg", (960, 720), orientation=orientation)
    new = np.asarray(load_rgb(path, reduce_to=(96, 96)))
    assert new.shape == ((240, 180, 3) if orientation in (5, 6, 7, 8) else (180, 240, 3))
    assert np.array_equal(new, libjpeg_decode(path, (96, 96)))


def test_a_callers_opened_image_is_rotated_into_a_new_image_not_in_place(tmp_path):
    path = write_jpeg(tmp_path / "rotated.jpg", (960, 720), orientation=6)
    with Image.open(path) as img:
        shown = as_rgb_image(img, reduce_to=(96, 96))
        assert shown.size == (180, 240)
        assert img.size == (240, 180)  # the caller's object keeps its stored orientation
        assert img.getexif()[0x0112] == 6
    assert np.array_equal(np.asarray(shown), libjpeg_decode(path, (96, 96)))


def test_the_model_input_is_unchanged_by_the_in_place_rotation(tmp_path):
    path = write_jpeg(tmp_path / "rotated.jpg", (1200, 900), orientation=8)
    spec = ImagePreprocessing(64, 64, crop="center")
    shown = Image.fromarray(libjpeg_decode(path, (64, 64)))
    assert shown.size == (113, 150)  # 1/8 of 1200x900, then turned by orientation 8
    expected = np.asarray(shown.resize((64, 64), Image.Resampling.BILINEAR,
                                       box=preprocess._center_crop_box(shown.size, 64, 64)))
    assert np.array_equal(image_to_array(path, spec), expected)


@pytest.fixture
def one_megapixel_cap(monkeypatch):
    """A 1 MP cap, so the over-cap pictures of these tests stay small and fast."""
    monkeypatch.setattr(preprocess, "MAX_IMAGE_PIXELS", 1_000_000)


def test_a_progressive_jpeg_is_capped_at_its_stored_size(tmp_path, one_megapixel_cap):
    path = write_jpeg(tmp_path / "progressive.jpg", (1600, 1200), progressive=True)
    with pytest.raises(ImageTooLarge) as info:
        load_rgb(path, reduce_to=(224, 224))
    assert str(info.value) == (f"{path}: progressive JPEG is 1600x1200 = 1.9 megapixels, over "
                               f"edgepose's decode limit of 1 megapixels {PROGRESSIVE_WHY}")


def test_the_same_pixels_as_baseline_still_decode_reduced(tmp_path, one_megapixel_cap):
    path = write_jpeg(tmp_path / "baseline.jpg", (1600, 1200))
    assert load_rgb(path, reduce_to=(224, 224)).size == (400, 300)  # 1/4: 0.12 MP held


def test_a_progressive_greyscale_jpeg_is_capped_too(tmp_path, one_megapixel_cap):
    path = write_jpeg(tmp_path / "grey.jpg", (1200, 1000), mode="L", progressive=True)
    with pytest.raises(ImageTooLarge, match=r"progressive JPEG is 1200x1000 = 1\.2 megapixels"):
        load_rgb(path, reduce_to=(96, 96))


def test_a_progressive_upload_is_capped_under_its_given_name(tmp_path, one_megapixel_cap):
    data = write_jpeg(tmp_path / "p.jpg", (1600, 1200), progressive=True).read_bytes()
    with pytest.raises(ImageTooLarge) as info:
        load_rgb(io.BytesIO(data), reduce_to=(224, 224), name="upload")
    assert str(info.value).startswith("upload: progressive JPEG is 1600x1200 = 1.9 megapixels")


def test_a_lazily_opened_progressive_jpeg_is_capped_too(tmp_path, one_megapixel_cap):
    path = write_jpeg(tmp_path / "p.jpg", (1600, 1200), progressive=True)
    with Image.open(path) as img, pytest.raises(ImageTooLarge, match="progressive JPEG"):
        image_to_array(img, ImagePreprocessing(224, 224))


def test_a_progressive_jpeg_under_the_cap_still_decodes_reduced(tmp_path, one_megapixel_cap):
    path = write_jpeg(tmp_path / "p.jpg", (960, 720), progressive=True)
    assert load_rgb(path, reduce_to=(96, 96)).size == (240, 180)  # 1/4, like baseline


def test_a_42_megapixel_progressive_jpeg_is_refused_at_the_real_cap(tmp_path):
    """7000x6000: a baseline file with these pixels decodes at 1/8 (875x750) for a 224 model
    (tests/test_runtime_decode.py); progressive, libjpeg would hold 84 MB of coefficients."""
    path = write_jpeg(tmp_path / "big.jpg", (7000, 6000), mode="L", progressive=True)
    with pytest.raises(ImageTooLarge) as info:
        load_rgb(path, reduce_to=(224, 224))
    assert str(info.value) == (f"{path}: progressive JPEG is 7000x6000 = 42.0 megapixels, over "
                               f"edgepose's decode limit of 40 megapixels {PROGRESSIVE_WHY}")


_DRAFT_LOAD = ("with Image.open(sys.argv[1]) as img:\n"
               "    img.draft(None, (224, 224))\n"
               "    img.load()\n"
               "    assert img.size == (375, 250), img.size\n")


def peak_kib(path: Path) -> int:
    return fx.peak_growth_kib("from PIL import Image", _DRAFT_LOAD, path)


def test_why_a_progressive_jpeg_counts_at_full_size_its_reduced_decode_holds_it_all(tmp_path):
    """6 MP colour at 1/8: libjpeg's coefficient buffer for a progressive file is 2 bytes x
    1.5 samples per pixel at 4:2:0 = 18 MB; a baseline file streams a few block rows."""
    baseline = write_jpeg(tmp_path / "baseline.jpg", (3000, 2000))
    progressive = write_jpeg(tmp_path / "progressive.jpg", (3000, 2000), progressive=True)
    # The difference, not the progressive figure alone: under QEMU (the emulated-Pi check)
    # the emulator's own code cache adds a few MB to both.
    assert peak_kib(progressive) - peak_kib(baseline) > 14_000


@pytest.mark.parametrize("progressive", [False, True])
def test_the_decode_steps_compose_to_the_model_input(tmp_path, progressive):
    """benchmarks/decode_latency.py times these steps one by one: together they must be
    exactly what image_to_array gives for a file (a progressive one at 1/8 is decoded from
    a rewritten copy: a new image)."""
    path = write_jpeg(tmp_path / "photo.jpg", (1600, 1200), orientation=6,
                      progressive=progressive)
    spec = ImagePreprocessing(96, 96, crop="center")
    opened = Image.open(path)
    scale = preprocess._plan(opened, path, (spec.width, spec.height))
    img = preprocess._load(opened, scale, (spec.width, spec.height))
    assert scale == 8 and img.size == (200, 150)  # 1/8, stored orientation
    assert (img is not opened) == progressive
    img = preprocess._to_rgb(preprocess._upright(img, in_place=True))
    assert img.size == (150, 200)
    steps = preprocess._pixels(preprocess._fit(img, spec), spec, None)
    assert np.array_equal(steps, image_to_array(path, spec))


def write_mpo(path: Path, size: tuple[int, int], progressive: bool = False) -> Path:
    """A Multi-Picture file (what Pillow calls MPO): the photo, then a smaller second
    picture, as phones with a depth map or stereo cameras write them."""
    with Image.open(write_jpeg(path.with_suffix(".first.jpg"), size)) as first:
        photo = first.convert("RGB")
    second = photo.resize((size[0] // 4, size[1] // 4))
    photo.save(path, "MPO", save_all=True, append_images=[second], quality=90,
               progressive=progressive)
    return path


@pytest.mark.parametrize("progressive", [False, True])
def test_a_multi_picture_jpeg_decodes_reduced_like_any_jpeg(tmp_path, progressive):
    """Before: format "MPO" was not drafted, so a 12 MP phone photo decoded whole."""
    path = write_mpo(tmp_path / "phone.jpg", (1600, 1200), progressive)
    with Image.open(path) as img:
        assert img.format == "MPO" and img.n_frames == 2
    assert np.array_equal(np.asarray(load_rgb(path, reduce_to=(96, 96))),
                          libjpeg_decode(path, (96, 96)))
    assert load_rgb(path, reduce_to=(96, 96)).size == (200, 150)  # 1/8 of the first picture


def test_a_multi_picture_jpeg_is_capped_like_a_jpeg(tmp_path, one_megapixel_cap):
    """Baseline: counted at its reduced size; progressive: at its stored size."""
    assert load_rgb(write_mpo(tmp_path / "b.jpg", (1600, 1200)), (96, 96)).size == (200, 150)
    with pytest.raises(ImageTooLarge, match=r"progressive JPEG is 1600x1200"):
        load_rgb(write_mpo(tmp_path / "p.jpg", (1600, 1200), progressive=True), (96, 96))
