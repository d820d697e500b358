"""The 1/8-scale rewrite of a progressive JPEG (edgepose.runtime.jpeg_scans) on files made by
libjpeg-turbo's own encoder and transcoder (cjpeg, jpegtran: tests/data/jpeg_scans/README.txt
has the commands), and on damaged copies of them: the picture must always be libjpeg's decode
of the whole file, and a file libjpeg refuses must stay refused."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgepose.errors import DataError
from edgepose.runtime.jpeg_scans import skip_unused_ac_scans
from edgepose.runtime.preprocess import load_rgb
from tests.jpeg_files import libjpeg_decode, spied_load

DATA = Path(__file__).parent / "data" / "jpeg_scans"

# A marker outside entropy-coded data (as jpeg_scans._MARKER): 0xFF not followed by a stuffed
# 0x00, a restart marker or a fill byte.
_MARKER = re.compile(rb"\xff(?![\x00\xd0-\xd7\xff])")


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def eighth(data: bytes) -> tuple[int, int]:
    """The ``reduce_to`` that makes Pillow's draft choose 1/8 for this file."""
    with Image.open(io.BytesIO(data)) as img:
        return max(img.size[0] // 8, 1), max(img.size[1] // 8, 1)


def scans(data: bytes) -> list[dict]:
    """The SOS headers of a well-formed file, in order: offsets and scan parameters."""
    found, pos = [], 2
    while (match := _MARKER.search(data, pos)) is not None and data[match.start() + 1] != 0xD9:
        start = match.start()
        header_end = start + 2 + int.from_bytes(data[start + 2:start + 4], "big")
        end = header_end
        if data[start + 1] == 0xDA:
            body = data[start + 4:header_end]
            count = body[0]
            after = _MARKER.search(data, header_end)
            end = after.start() if after else len(data)
            found.append({"start": start, "end": end, "body": start + 4,
                          "components": [body[1 + 2 * i] for i in range(count)],
                          "Ss": body[1 + 2 * count], "Se": body[2 + 2 * count],
                          "Ah": body[3 + 2 * count] >> 4, "Al": body[3 + 2 * count] & 15})
        pos = end
    return found


def outcome(decode) -> np.ndarray | str:
    """The decoded array, or the name of the exception class the decode raised."""
    try:
        return decode()
    except Exception as exc:  # any failure: its class is what is compared
        return type(exc).__name__


def assert_decodes_like_libjpeg(tmp_path: Path, data: bytes, reduce_to: tuple[int, int]) -> None:
    """The rewrite is None or decodes to libjpeg's pixels, and ``load_rgb`` gives libjpeg's
    pixels, or a DataError exactly when libjpeg refuses the file."""
    reference = outcome(lambda: libjpeg_decode(data, reduce_to))
    rewritten = skip_unused_ac_scans(data)
    if rewritten is not None:
        again = outcome(lambda: libjpeg_decode(rewritten, reduce_to))
        if isinstance(reference, str):
            assert isinstance(again, str), f"libjpeg refuses it ({reference}), not its rewrite"
        else:
            assert not isinstance(again, str) and np.array_equal(again, reference)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    if isinstance(reference, str):
        with pytest.raises(DataError):
            load_rgb(path, reduce_to=reduce_to)
    else:
        assert np.array_equal(np.asarray(load_rgb(path, reduce_to=reduce_to)), reference)


@pytest.mark.parametrize("name,shape", [
    ("std_420.jpg", (24, 32, 3)),
    ("mixed_2x1_1x2_1x1_optimize.jpg", (24, 32, 3)),
    ("sa_bands_444.jpg", (24, 32, 3)),
    ("grey_9x17.jpg", (3, 2, 3)),
    ("grey_flat_2040x2056.jpg", (257, 255, 3)),
])
def test_cjpeg_files_decode_through_the_rewrite_to_libjpegs_pixels(tmp_path, name, shape):
    data = read(name)
    reduce_to = eighth(data)
    rewritten = skip_unused_ac_scans(data)
    assert rewritten is not None and len(rewritten) < len(data)
    reference = libjpeg_decode(data, reduce_to)
    assert reference.shape == shape
    assert np.array_equal(libjpeg_decode(rewritten, reduce_to), reference)
    picture, called = spied_load(DATA / name, reduce_to)
    assert called
    assert np.array_equal(picture, reference)


def test_mixed_sampling_keeps_only_the_scans_of_the_component_scaled_by_idct():
    """Y 2x1 and Cb 1x2 under 2x2 maxima fail libjpeg-turbo's doubling test (1x1 inverse DCT,
    DC only); Cr 1x1 passes it (2x2 inverse DCT, which reads AC): its AC scans stay."""
    data = read("mixed_2x1_1x2_1x1_optimize.jpg")
    before = scans(data)
    after = scans(skip_unused_ac_scans(data))
    ac_scans = [(s["components"][0], s["Ss"], s["Se"], s["Ah"], s["Al"]) for s in after
                if s["Ss"] > 0]
    cr_scans = [(s["components"][0], s["Ss"], s["Se"], s["Ah"], s["Al"]) for s in before
                if s["Ss"] > 0 and s["components"] == [3]]
    assert cr_scans
    assert ac_scans == cr_scans + [(1, 1, 63, 0, 0), (2, 1, 63, 0, 0)]


def test_a_jpegtran_progressive_copy_keeps_its_exif_rotation(tmp_path):
    """256x192 stored, EXIF 6 (shown 192x256): for a 24x32 model 1/8 is 24 wide, 32 high."""
    data = read("jpegtran_progressive_exif6.jpg")
    assert skip_unused_ac_scans(data) is not None
    picture, called = spied_load(DATA / "jpegtran_progressive_exif6.jpg", (24, 32))
    assert called and picture.shape == (32, 24, 3)
    assert np.array_equal(picture, libjpeg_decode(data, (24, 32)))


@pytest.mark.parametrize("name", ["restart.jpg", "arithmetic.jpg"])
def test_restart_intervals_and_arithmetic_coding_are_left_to_libjpeg(tmp_path, name):
    data = read(name)
    assert skip_unused_ac_scans(data) is None
    picture, called = spied_load(DATA / name, eighth(data))
    assert not called
    assert np.array_equal(picture, libjpeg_decode(data, eighth(data)))


@pytest.mark.parametrize("tail", [b"\0" * 100, b"trailing text", b"\xff" * 8, b"\xff\xd9\xff\xd9",
                                  b"\xff\xd8\xff\xe0\x00\x10JFIF\0junk"])
def test_bytes_after_the_eoi_are_ignored(tmp_path, tail):
    data = read("std_420.jpg") + tail
    assert skip_unused_ac_scans(data) is not None
    assert_decodes_like_libjpeg(tmp_path, data, eighth(data))


@pytest.mark.parametrize("name", ["std_420.jpg", "sa_bands_444.jpg"])
def test_a_file_cut_short_is_never_rewritten_and_fails_like_the_original(tmp_path, name):
    """Cut at every twentieth of its length, and just before its EOI."""
    data = read(name)
    for cut in [len(data) * k // 20 for k in range(1, 20)] + [len(data) - 2]:
        assert skip_unused_ac_scans(data[:cut]) is None, cut
        assert_decodes_like_libjpeg(tmp_path, data[:cut], eighth(data))


@pytest.mark.parametrize("name", ["std_420.jpg", "mixed_2x1_1x2_1x1_optimize.jpg",
                                  "sa_bands_444.jpg"])
def test_a_file_cut_short_and_closed_with_an_eoi_decodes_like_libjpeg(tmp_path, name):
    """The first scans of a progressive file plus an EOI (a partial download closed by a
    client, or a "low quality image placeholder" made by cutting a progressive file): libjpeg
    decodes what arrived, and smooths the blocks whose coefficients never came (libjpeg-turbo
    ``jdcoefct.c``, ``decompress_smooth_data``, which at 1/8 changes the DC values too)."""
    data = read(name)
    for cut in [len(data) * k // 20 for k in range(1, 20)]:
        assert_decodes_like_libjpeg(tmp_path, data[:cut] + b"\xff\xd9", eighth(data))


@pytest.mark.parametrize("name", ["incomplete_444_y_ac_only.jpg", "incomplete_grey_ac_10_63.jpg"])
def test_a_progression_that_never_sends_some_coefficients_decodes_like_libjpeg(tmp_path, name):
    """T.81 lets a progression leave coefficients unsent; libjpeg then smooths those blocks,
    changing the DC values a 1/8 decode outputs. Sending them as zeros would switch that off."""
    data = read(name)
    assert_decodes_like_libjpeg(tmp_path, data, eighth(data))


def _first_luma_ac_scan(data: bytes) -> dict:
    return next(s for s in scans(data) if s["components"] == [1] and s["Ss"] > 0)


def _patched(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + bytes([value]) + data[offset + 1:]


def _corrupt(kind: str) -> bytes:
    """std_420.jpg with one luma AC scan header broken the way libjpeg stops on (a fatal error,
    not a warning): ``jdphuff.c`` start_pass_phuff_decoder, ``jdmarker.c`` get_sos."""
    data = read("std_420.jpg")
    scan = _first_luma_ac_scan(data)
    body = scan["body"]  # count, (component, tables), Ss, Se, Ah|Al
    if kind == "Se 64":
        return _patched(data, body + 4, 64)
    if kind == "Ss > Se":
        return _patched(data, body + 3, scan["Se"] + 1)
    if kind == "Al 14":
        return _patched(data, body + 5, (scan["Ah"] << 4) | 14)
    if kind == "undefined AC table":
        return _patched(data, body + 2, (data[body + 2] & 0xF0) | 3)
    if kind == "refinement Ah 2 Al 0":
        refine = next(s for s in scans(data) if s["components"] == [1] and s["Ah"] > 0)
        return _patched(data, refine["body"] + 5, 0x20)
    if kind == "SOS length one too long":
        start = scan["start"]
        length = int.from_bytes(data[start + 2:start + 4], "big")
        header_end = start + 2 + length
        return (data[:start + 2] + (length + 1).to_bytes(2, "big") + data[start + 4:header_end]
                + b"\0" + data[header_end:])
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["Se 64", "Ss > Se", "Al 14", "undefined AC table",
                                  "refinement Ah 2 Al 0", "SOS length one too long"])
def test_a_skipped_scan_libjpeg_refuses_keeps_the_file_refused(tmp_path, kind):
    data = _corrupt(kind)
    assert isinstance(outcome(lambda: libjpeg_decode(data, eighth(data))), str)
    assert_decodes_like_libjpeg(tmp_path, data, eighth(data))


def _after_first_scan(segment: bytes) -> bytes:
    data = read("std_420.jpg")
    end = scans(data)[0]["end"]
    return data[:end] + segment + data[end:]


@pytest.mark.parametrize("kind", ["empty SOS", "SOF2 shorter than its fields",
                                  "SOF2 without components"])
def test_malformed_segments_make_the_rewrite_give_up_not_raise(tmp_path, kind):
    """Segments after the first scan, which Pillow's header parser never reaches; libjpeg
    refuses each of these files, so must ``load_rgb`` (DataError, not IndexError)."""
    if kind == "empty SOS":  # the first luma AC scan's header length set to 2
        data = read("std_420.jpg")
        start = _first_luma_ac_scan(data)["start"]
        data = data[:start + 2] + b"\x00\x02" + data[start + 4:]
    elif kind == "SOF2 shorter than its fields":
        data = _after_first_scan(b"\xff\xc2\x00\x03\x08")
    else:
        data = _after_first_scan(b"\xff\xc2\x00\x08\x08\x00\xc0\x01\x00\x00")
    assert isinstance(outcome(lambda: libjpeg_decode(data, eighth(data))), str)
    assert outcome(lambda: skip_unused_ac_scans(data)) is None
    assert_decodes_like_libjpeg(tmp_path, data, eighth(data))


def test_a_comment_with_a_bogus_length_decodes_like_libjpeg(tmp_path):
    """A COM segment whose length field says 1 (less than the field itself): libjpeg skips
    nothing and reads on; the rewrite must not read it differently."""
    data = _after_first_scan(b"\xff\xfe\x00\x01")
    assert not isinstance(outcome(lambda: libjpeg_decode(data, eighth(data))), str)
    assert_decodes_like_libjpeg(tmp_path, data, eighth(data))
