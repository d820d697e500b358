"""A progressive JPEG decoded at 1/8 without the AC scans that decode never reads: the same
pixels as libjpeg's decode of the whole file, for every layout of components, and the files
the rewrite must leave alone (edgepose.runtime.jpeg_scans)."""

from __future__ import annotations

import io
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from edgepose.errors import DataError
from edgepose.runtime import jpeg_scans, preprocess
from edgepose.runtime.jpeg_scans import skip_unused_ac_scans
from edgepose.runtime.preprocess import ImagePreprocessing, image_to_array, load_rgb
from tests.jpeg_files import camera_like, libjpeg_decode, spied_load

# Pillow's ``subsampling``: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0.
LAYOUTS = [("RGB", 0), ("RGB", 1), ("RGB", 2), ("L", 2), ("CMYK", 0), ("CMYK", 2)]


def jpeg_bytes(picture: Image.Image, mode: str = "RGB", subsampling: int = 2,
               progressive: bool = True, **options) -> bytes:
    buffer = io.BytesIO()
    picture.convert(mode).save(buffer, "JPEG", quality=90, progressive=progressive,
                               subsampling=subsampling, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("mode,subsampling", LAYOUTS)
def test_a_progressive_jpeg_at_one_eighth_decodes_to_the_same_pixels(tmp_path, mode, subsampling):
    """1001x763 (no side a multiple of 8 or 16) drafted to 1/8 for a 96x90 model."""
    data = jpeg_bytes(camera_like((1001, 763)), mode, subsampling)
    rewritten = skip_unused_ac_scans(data)
    assert rewritten is not None and len(rewritten) < len(data) / 2
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    picture, called = spied_load(path, (96, 90))
    assert called
    assert picture.shape == (96, 126, 3)  # ceil(763 / 8), ceil(1001 / 8)
    assert np.array_equal(picture, libjpeg_decode(data, (96, 90)))
    assert np.array_equal(libjpeg_decode(rewritten, (96, 90)), picture)


def test_what_is_skipped_follows_libjpeg_turbos_idct_scaling_of_each_component():
    """At 1/8 a full-resolution component uses the 1x1 inverse DCT (DC only); 4:2:0 chroma
    the 2x2 one (it reads AC), 4:2:2 chroma the 1x1 one (its vertical factor is full)."""
    assert jpeg_scans._uses_dc_only(h=2, v=2, h_max=2, v_max=2)  # 4:2:0 luma
    assert not jpeg_scans._uses_dc_only(h=1, v=1, h_max=2, v_max=2)  # 4:2:0 chroma
    assert jpeg_scans._uses_dc_only(h=1, v=1, h_max=2, v_max=1)  # 4:2:2 chroma
    assert jpeg_scans._uses_dc_only(h=1, v=1, h_max=1, v_max=1)  # 4:4:4, greyscale
    picture = camera_like((640, 480))
    # 4:4:4 keeps no AC scan at all: the file shrinks to its DC scans and headers.
    assert len(skip_unused_ac_scans(jpeg_bytes(picture, subsampling=0))) < len(
        skip_unused_ac_scans(jpeg_bytes(picture, subsampling=2)))


@pytest.mark.parametrize("size, mode, reduce_to", [
    ((1600, 1400), "L", (200, 175)),  # 200 x 175 = 35,000 luma blocks: more than one EOB14
    ((4000, 3000), "RGB", (224, 224))])  # 12 MP 4:2:0 like decode_latency's, for 224 px
def test_big_photos_decode_exactly_and_skip_the_luma_ac_scans(tmp_path, size, mode, reduce_to):
    data = jpeg_bytes(camera_like(size, seed=3), mode)
    rewritten = skip_unused_ac_scans(data)
    assert rewritten is not None and len(rewritten) < len(data) / 2
    path = tmp_path / "big.jpg"
    path.write_bytes(data)
    picture, called = spied_load(path, reduce_to)
    assert called and picture.shape == (size[1] // 8, size[0] // 8, 3)
    assert np.array_equal(picture, libjpeg_decode(data, reduce_to))


def test_the_empty_scan_is_coded_as_eobruns_with_stuffed_bytes():
    """T.81 G.1.2.2: EOBr = 2**r + r extra bits; codes 0000..1110 for EOB0..EOB14."""
    header = b"\xff\xda\x00\x08\x01\x07\x00\x01\x3f\x00"  # 1 component (id 7), Ss 1, Se 63
    assert jpeg_scans._eob_scan(7, 1) == header + bytes([0b0000_1111])  # EOB0, 1-bit padding
    assert jpeg_scans._eob_scan(7, 5) == header + bytes([0b0010_01_11])  # EOB2 + extra 01
    # 32,768 blocks: EOB14 (1110) + 14 ones for 32,767, then EOB0; 0xFF is stuffed with 0x00.
    assert jpeg_scans._eob_scan(7, 32768) == header + bytes([0xEF, 0xFF, 0x00, 0xC3])


@pytest.mark.parametrize("reduce_to,size", [((224, 224), (250, 188)), ((96, 96), (250, 188))])
def test_at_any_scale_but_one_eighth_the_whole_file_is_decoded(tmp_path, reduce_to, size):
    """2000x1500 for 224 is 1/4 (1/8 would be 250x188 < 224 high): AC is needed; for 96 it
    is 1/8. Either way the picture is libjpeg's decode of the whole file."""
    data = jpeg_bytes(camera_like((2000, 1500), seed=1))
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    picture, called = spied_load(path, reduce_to)
    assert called == (reduce_to == (96, 96))
    assert np.array_equal(picture, libjpeg_decode(data, reduce_to))
    if reduce_to == (224, 224):
        assert picture.shape == (375, 500, 3)
    else:
        assert picture.shape == (size[1], size[0], 3)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_survives_the_rewrite(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = jpeg_bytes(camera_like((1200, 900), seed=2), exif=exif.tobytes())
    path = tmp_path / "rotated.jpg"
    path.write_bytes(data)
    picture, called = spied_load(path, (96, 96))
    assert called
    assert picture.shape == ((113, 150, 3) if orientation == 3 else (150, 113, 3))
    assert np.array_equal(picture, libjpeg_decode(data, (96, 96)))


def test_optimized_huffman_tables_per_scan_are_kept(tmp_path):
    """``optimize=True`` writes a DHT before each scan; the kept scans keep their tables."""
    data = jpeg_bytes(camera_like((1024, 768), seed=4), optimize=True)
    assert data.count(b"\xff\xc4") > 2
    rewritten = skip_unused_ac_scans(data)
    assert rewritten is not None
    assert np.array_equal(libjpeg_decode(rewritten, (128, 96)), libjpeg_decode(data, (128, 96)))


def test_the_model_input_is_unchanged(tmp_path):
    data = jpeg_bytes(camera_like((1920, 1440), seed=5))
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    spec = ImagePreprocessing(160, 160, crop="center")
    reference = Image.fromarray(libjpeg_decode(data, (160, 160)))
    assert reference.size == (240, 180)
    expected = np.asarray(reference.resize(
        (160, 160), Image.Resampling.BILINEAR,
        box=preprocess._center_crop_box(reference.size, 160, 160)))
    assert np.array_equal(image_to_array(path, spec), expected)


def test_files_it_does_not_apply_to_are_left_to_libjpeg(tmp_path):
    picture = camera_like((800, 600), seed=6)
    baseline = jpeg_bytes(picture, progressive=False)
    restart = jpeg_bytes(picture, restart_marker_rows=1)
    assert b"\xff\xdd" in restart  # a DRI segment: empty bands would have to restart inside
    assert skip_unused_ac_scans(baseline) is None
    assert skip_unused_ac_scans(restart) is None
    assert skip_unused_ac_scans(b"") is None
    assert skip_unused_ac_scans(b"not a jpeg at all") is None
    path = tmp_path / "restart.jpg"
    path.write_bytes(restart)
    picture_out, rewritten = spied_load(path, (96, 72))
    assert not rewritten
    assert np.array_equal(picture_out, libjpeg_decode(restart, (96, 72)))


def test_a_truncated_progressive_file_keeps_failing_and_names_the_file(tmp_path):
    """Cut inside an AC scan the rewrite would drop: without the EOI check the rewritten
    file would decode cleanly and hide the damage."""
    data = jpeg_bytes(camera_like((1024, 768), seed=7))
    cut = data[: len(data) * 3 // 4]
    assert skip_unused_ac_scans(cut) is None
    path = tmp_path / "cut.jpg"
    path.write_bytes(cut)
    with pytest.raises(DataError) as info:
        load_rgb(path, reduce_to=(96, 96))
    assert str(info.value).startswith(f"{path}: not a readable image (OSError: image file is "
                                      "truncated")


def test_an_upload_stream_decodes_through_the_rewrite_too():
    data = jpeg_bytes(camera_like((1024, 768), seed=8))
    with mock.patch.object(preprocess, "skip_unused_ac_scans",
                           wraps=jpeg_scans.skip_unused_ac_scans) as spy:
        picture = np.asarray(load_rgb(io.BytesIO(data), reduce_to=(96, 96), name="upload"))
    assert spy.call_count == 1
    assert np.array_equal(picture, libjpeg_decode(data, (96, 96)))


def test_a_rewritten_file_that_fails_to_decode_falls_back_to_the_original(tmp_path):
    data = jpeg_bytes(camera_like((1024, 768), seed=9))
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    broken = b"\xff\xd8\xff\xd9"  # parses nowhere: Pillow cannot identify it
    with mock.patch.object(preprocess, "skip_unused_ac_scans", return_value=broken):
        picture = np.asarray(load_rgb(path, reduce_to=(96, 96)))
    assert np.array_equal(picture, libjpeg_decode(data, (96, 96)))


def test_each_component_is_counted_in_its_own_blocks():
    """A non-interleaved scan covers ceil(ceil(X * h / h_max) / 8) blocks per side (T.81
    A.2.2), not whole MCUs: 1001x763 at 4:2:0 is 126 x 96 luma blocks, 63 x 48 chroma."""
    data = jpeg_bytes(camera_like((1001, 763)), subsampling=2)
    start = data.index(b"\xff\xc2") + 4
    frame = jpeg_scans._frame(data[start:start - 2 + int.from_bytes(data[start - 2:start], "big")])
    assert [(c.ident, c.h, c.v, c.blocks) for c in frame] == [
        (1, 2, 2, 126 * 96), (2, 1, 1, 63 * 48), (3, 1, 1, 63 * 48)]
