"""Decoding images of any mode to RGB, and scanning a folder-per-class dataset.

Every image here is real: photos from ``skimage.data`` and handwritten digits
from ``sklearn.datasets.load_digits``, written with Pillow into ``tmp_path``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from sklearn.datasets import load_digits

from edgepose.data.images import build_image_splits
from edgepose.errors import DataError
from edgepose.runtime.preprocess import load_rgb
from tests.jpeg_files import camera_like

# Folder name -> which handwritten digit fills it (names chosen so sorting matters).
CLASSES = {"seven": 7, "four": 4, "one": 1}


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real, asymmetric photo (Chelsea the cat), 64 wide x 40 high, uint8 RGB."""
    return np.asarray(Image.fromarray(skdata.chelsea()).resize((64, 40), Image.BILINEAR))


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def write_digit_folders(root: Path, digits, counts: dict[str, int]) -> Path:
    """``root/<class>/<row>.png``: real 8x8 digits upscaled to 32x32 greyscale PNGs."""
    for name, n in counts.items():
        rows = np.flatnonzero(digits.target == CLASSES[name])[:n]
        (root / name).mkdir(parents=True, exist_ok=True)
        for row in rows:
            grey = (digits.images[row] * (255 / 16)).astype(np.uint8)
            Image.fromarray(grey).resize((32, 32), Image.BICUBIC).save(root / name / f"{row}.png")
    return root


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --- decoding ---------------------------------------------------------------------------

def test_cmyk_jpeg_decodes_to_its_rgb_colours(tmp_path, photo):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(photo).convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    image = load_rgb(path)
    assert image.mode == "RGB"
    assert _diff(np.asarray(image), photo) < 6


def test_16bit_png_is_scaled_to_8bit_grey(tmp_path, photo):
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    path = tmp_path / "grey16.png"
    Image.fromarray(grey.astype(np.uint16) * 257).save(path)  # full 16-bit range
    assert Image.open(path).mode == "I;16"
    decoded = np.asarray(load_rgb(path))
    assert decoded.shape == (40, 64, 3)
    for channel in range(3):
        assert np.abs(decoded[..., channel].astype(int) - grey).max() <= 1


def test_dark_16bit_pgm_stays_dark(tmp_path, photo):
    # Pillow opens 16-bit PGM as mode "I": the value range must not be stretched.
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    path = tmp_path / "dark16.pgm"
    Image.fromarray(grey.astype(np.uint16) * 64).save(path)  # a quarter of full scale
    assert Image.open(path).mode == "I"
    decoded = np.asarray(load_rgb(path))[..., 0].astype(int)
    assert np.abs(decoded - np.round(grey.astype(float) * 64 * 255 / 65535)).max() <= 1
    assert decoded.max() < 70


def test_palette_png_transparency_becomes_white(tmp_path, photo):
    quantized = Image.fromarray(photo).quantize(colors=15)
    indices = np.asarray(quantized).astype(np.uint8) + 1
    indices[:, :32] = 0  # index 0 (red in the palette) is the transparent one
    image = Image.fromarray(indices)
    image.putpalette([255, 0, 0] + quantized.getpalette()[:45])
    path = tmp_path / "palette.png"
    image.save(path, transparency=0)
    assert Image.open(path).mode == "P"
    decoded = np.asarray(load_rgb(path))
    assert (decoded[:, :32] == 255).all()
    assert np.array_equal(decoded[:, 32:], np.asarray(quantized.convert("RGB"))[:, 32:])


def test_la_image_composites_over_white(tmp_path, photo):
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    alpha = np.zeros_like(grey)
    alpha[20:] = 255  # top half transparent, bottom half opaque
    path = tmp_path / "la.png"
    Image.fromarray(np.stack([grey, alpha], axis=-1)).save(path)
    assert Image.open(path).mode == "LA"
    decoded = np.asarray(load_rgb(path))
    assert (decoded[:20] == 255).all()
    assert np.array_equal(decoded[20:], np.stack([grey[20:]] * 3, axis=-1))


def test_rgba_png_transparency_becomes_white(tmp_path, photo):
    alpha = np.full(photo.shape[:2], 255, np.uint8)
    alpha[:, 48:] = 0
    path = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([photo, alpha])).save(path)
    decoded = np.asarray(load_rgb(path))
    assert (decoded[:, 48:] == 255).all()
    assert np.array_equal(decoded[:, :48], photo[:, :48])


def test_exif_orientation_6_is_rotated_clockwise(tmp_path, photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "rotated.jpg"
    Image.fromarray(photo).save(path, exif=exif, quality=95)
    decoded = np.asarray(load_rgb(path))
    assert decoded.shape == (64, 40, 3)
    clockwise = np.rot90(photo, k=-1)
    assert _diff(decoded, clockwise) < 6
    assert _diff(decoded, np.rot90(photo, k=1)) > 4 * _diff(decoded, clockwise)


def test_truncated_file_is_a_data_error_naming_it(tmp_path, photo):
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[:300])
    with pytest.raises(DataError) as info:
        load_rgb(path)
    assert info.value.path == path


# --- scanning a dataset -----------------------------------------------------------------

def test_classes_are_the_sorted_folder_names(tmp_path, digits):
    root = write_digit_folders(tmp_path / "data", digits, {"seven": 6, "four": 5, "one": 4})
    report = build_image_splits(root)
    splits = report.splits
    assert splits.classes == ["four", "one", "seven"]
    assert len(splits.items) == 15 and not report.problems
    for sample in splits.items:
        assert sample.path.split("/")[0] == splits.classes[sample.label]
        assert splits.absolute(sample).is_file()


def test_files_without_an_image_suffix_are_ignored(tmp_path, digits):
    root = write_digit_folders(tmp_path / "data", digits, {"seven": 4, "one": 4})
    (root / "one" / "notes.txt").write_text("labelled by hand\n")
    report = build_image_splits(root)
    assert report.ignored == ["one/notes.txt"]
    assert len(report.splits.items) == 8


@pytest.fixture
def damaged(tmp_path, digits, photo) -> Path:
    """Two classes of real digits plus a truncated JPEG and an empty PNG."""
    root = write_digit_folders(tmp_path / "data", digits, {"seven": 5, "one": 5})
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG")
    (root / "seven" / "cut.jpg").write_bytes(buffer.getvalue()[:400])
    (root / "one" / "empty.png").write_bytes(b"")
    return root


def test_corrupt_and_empty_files_are_reported_by_path_and_skipped(damaged):
    report = build_image_splits(damaged)
    reasons = {p.path: p.reason for p in report.problems}
    assert set(reasons) == {"seven/cut.jpg", "one/empty.png"}
    assert reasons["one/empty.png"] == "empty file"
    listed = {s.path for s in report.splits.items}
    assert "seven/cut.jpg" not in listed and "one/empty.png" not in listed
    assert len(listed) == 10
    summary = report.summary()
    assert "skipped 2 unreadable file(s)" in summary
    assert "seven/cut.jpg" in summary and "one/empty.png" in summary


def test_strict_mode_raises_naming_the_bad_files(damaged):
    with pytest.raises(DataError) as info:
        build_image_splits(damaged, strict=True)
    message = str(info.value)
    assert "seven/cut.jpg" in message and "one/empty.png" in message
    assert "strict" in message


def test_single_class_dataset_is_an_error(tmp_path, digits):
    root = write_digit_folders(tmp_path / "data", digits, {"seven": 6})
    with pytest.raises(DataError, match="at least 2") as info:
        build_image_splits(root)
    assert info.value.path == root.resolve()
    assert "seven" in str(info.value)


def test_class_with_one_image_is_an_error_naming_its_folder(tmp_path, digits):
    root = write_digit_folders(tmp_path / "data", digits, {"seven": 6, "one": 1})
    with pytest.raises(DataError, match="'one' has 1 readable image") as info:
        build_image_splits(root)
    assert info.value.path == root.resolve() / "one"


def test_class_whose_only_images_are_unreadable_is_an_error(tmp_path, digits):
    root = write_digit_folders(tmp_path / "data", digits, {"seven": 6, "one": 1})
    (root / "one" / "blank.png").write_bytes(b"")
    with pytest.raises(DataError, match="'one' has 1 readable image"):
        build_image_splits(root)


def test_empty_dataset_folder_is_an_error(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataError, match="no class folders") as info:
        build_image_splits(root)
    assert info.value.path == root.resolve()


def test_empty_class_folder_is_an_error_naming_it(tmp_path, digits):
    root = write_digit_folders(tmp_path / "data", digits, {"seven": 4, "one": 4})
    (root / "four").mkdir()
    with pytest.raises(DataError, match="no image files") as info:
        build_image_splits(root)
    assert info.value.path == root.resolve() / "four"


def test_missing_dataset_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match="not found") as info:
        build_image_splits(tmp_path / "nowhere")
    assert info.value.path == tmp_path / "nowhere"


def test_symlink_back_to_an_ancestor_does_not_loop(tmp_path, digits):
    root = write_digit_folders(tmp_path / "data", digits, {"seven": 4, "one": 4})
    (root / "one" / "loop").symlink_to(root / "one", target_is_directory=True)
    report = build_image_splits(root, check_leaks=False)
    assert sorted(s.path for s in report.splits.items if s.path.startswith("one/")) == sorted(
        f"one/{p.name}" for p in (root / "one").glob("*.png"))


def test_a_dataset_of_every_image_mode_scans_without_problems(tmp_path, photo):
    root = tmp_path / "data"
    image = Image.fromarray(photo)
    deep = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    for class_name in ("cat", "kitten"):
        folder = root / class_name
        folder.mkdir(parents=True)
        image.convert("CMYK").save(folder / "cmyk.jpg")
        image.convert("L").save(folder / "grey.png")
        image.convert("LA").save(folder / "grey_alpha.png")
        image.convert("P").save(folder / "palette.gif")
        image.convert("RGBA").save(folder / "rgba.webp")
        image.save(folder / "plain.bmp")
        image.save(folder / "plain.tiff")
        Image.fromarray(deep).save(folder / "deep.png")
    report = build_image_splits(root, check_leaks=False)
    assert report.problems == []
    assert len(report.splits.items) == 16


def test_hidden_files_are_skipped_silently(tmp_path, digits):
    root = write_digit_folders(tmp_path / "data", digits, {"seven": 4, "one": 4})
    (root / "one" / "._7.png").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    report = build_image_splits(root, check_leaks=False)
    assert report.problems == [] and report.ignored == []
    assert len(report.splits.items) == 8


def test_a_file_given_as_the_dataset_is_an_error(tmp_path, photo):
    path = tmp_path / "one.png"
    Image.fromarray(photo).save(path)
    with pytest.raises(DataError, match="not a folder") as info:
        build_image_splits(path)
    assert info.value.path == path


def test_photos_are_verified_as_the_trainer_decodes_them(tmp_path, digits, monkeypatch):
    """Verification decodes reduced, like image_to_array: a 1.9 MP baseline JPEG under a 1 MP
    cap is usable (the trainer decodes it reduced, 0.1 MP) and kept; a progressive one is
    refused (libjpeg holds all of it at any scale)."""
    from edgepose.runtime import preprocess

    monkeypatch.setattr(preprocess, "MAX_IMAGE_PIXELS", 1_000_000)
    root = write_digit_folders(tmp_path / "data", digits, {"seven": 5, "one": 5})
    big = camera_like((1600, 1200))
    big.save(root / "seven" / "big.jpg", quality=90)
    big.save(root / "one" / "progressive.jpg", quality=90, progressive=True)
    report = build_image_splits(root)
    reasons = {p.path: p.reason for p in report.problems}
    assert set(reasons) == {"one/progressive.jpg"}
    assert reasons["one/progressive.jpg"].startswith("progressive JPEG is 1600x1200")
    assert "seven/big.jpg" in {s.path for s in report.splits.items}


def test_a_progressive_photo_cut_inside_the_scans_a_reduced_decode_skips_is_reported(
        tmp_path, digits):
    """2400x1800 verified at 1/8, which reads no AC scan of the luma; the file ends inside
    one: still unreadable (edgepose.runtime.jpeg_scans leaves a file without EOI alone)."""
    root = write_digit_folders(tmp_path / "data", digits, {"seven": 5, "one": 5})
    buffer = io.BytesIO()
    camera_like((2400, 1800)).save(buffer, format="JPEG", quality=90, progressive=True)
    (root / "one" / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 3 // 4])
    reasons = {p.path: p.reason for p in build_image_splits(root).problems}
    assert set(reasons) == {"one/cut.jpg"}
    assert reasons["one/cut.jpg"].startswith("not a readable image (OSError: image file is "
                                             "truncated")
