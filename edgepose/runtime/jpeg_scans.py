"""Skip the scans of a progressive JPEG that a 1/8-scale decode never uses.

A progressive JPEG (ITU-T T.81 Annex G, ``SOF2``) stores its DCT coefficients
in several scans: first the DC coefficient of every block, then bands of AC
coefficients, then refinements. libjpeg decodes every scan into a full-size
coefficient buffer whatever the output scale, so a 12 MP progressive photo
drafted to 1/8 for a 224x224 model still pays for Huffman-decoding every AC
coefficient (about 110 ms on an x86 core, 35x the MobileNetV2-224 int8 invoke:
``benchmarks/results/*/decode_latency.md``), only to throw them away: at 1/8
scale a component whose blocks each become one output pixel uses the 1x1
inverse DCT, which reads the DC coefficient alone (libjpeg-turbo
``jidctred.c``, ``jpeg_idct_1x1``).

:func:`skip_unused_ac_scans` rewrites the file so that libjpeg reads only what
that decode uses: the AC scans of those components are replaced by one empty
scan each (every block "end of band", coded as a few EOBRUN symbols, T.81
G.1.2.2), everything else (markers, EXIF, ICC, tables, DC scans and
refinements, the scans of components libjpeg-turbo scales by IDCT) is kept
byte for byte. The decoded picture is identical, pixel for pixel, to the 1/8
decode of the original (``tests/test_runtime_jpeg_scans.py`` checks it for
4:2:0, 4:2:2, 4:4:4, greyscale and CMYK), about 4x faster.

Why empty scans rather than none: with AC coefficients never sent, libjpeg
treats them as unknown and "smooths" the blocks, which also changes the DC
values it outputs (libjpeg-turbo ``jdcoefct.c``, ``decompress_smooth_data``);
coefficients sent as zero at full precision switch that off.

Which components: libjpeg-turbo scales a subsampled component up by choosing a
larger inverse DCT rather than upsampling when it can (``jdmaster.c``,
``jpeg_core_output_dimensions``): at 1/8, the chroma of a 4:2:0 file uses the
2x2 inverse DCT, which reads AC coefficients, so its scans are kept. A
component keeps the 1x1 inverse DCT exactly when its sampling factors fail that
rule's doubling test (:func:`_uses_dc_only`); keeping more than needed is never
wrong, so plain libjpeg (always 1x1 at 1/8) decodes the result identically too.

Files this does not touch (``None``): anything but a Huffman-coded 8-bit
progressive frame, files with restart intervals (an empty band would have to
restart inside), DNL markers, and anything that does not parse to its EOI
marker (a truncated file must keep failing the way it fails).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A marker in entropy-coded data: 0xFF followed by anything but a stuffed 0x00, a
# restart marker RST0-7 (0xD0-0xD7) or another 0xFF fill byte (T.81 B.1.1.2, F.1.2.3).
_MARKER = re.compile(rb"\xff(?![\x00\xd0-\xd7\xff])")

_SOI, _EOI, _SOS, _DRI, _DNL = 0xD8, 0xD9, 0xDA, 0xDD, 0xDC
_PROGRESSIVE_HUFFMAN = 0xC2  # SOF2
# Other frame types: baseline/extended/lossless/hierarchical/arithmetic (T.81 Table B.1).
_OTHER_FRAMES = frozenset({0xC0, 0xC1, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                           0xCF})

_MAX_EOBRUN = 32767  # EOB14 with 14 extra bits: 2**14 + (2**14 - 1) blocks (T.81 G.1.2.2)
_EOB_TABLE_ID = 0
# One AC Huffman table holding EOB0..EOB14 (symbols 0x00, 0x10, ..., 0xE0): 15 codes of
# 4 bits, 0000..1110 in canonical order, leaving out the all-ones code T.81 C.2 forbids.
_EOB_TABLE = (bytes([0x10 | _EOB_TABLE_ID]) + bytes([0, 0, 0, 15] + [0] * 12)
              + bytes(r << 4 for r in range(15)))
_EOB_DHT = b"\xff\xc4" + (2 + len(_EOB_TABLE)).to_bytes(2, "big") + _EOB_TABLE


@dataclass(frozen=True)
class _Component:
    """One frame component of a SOF header: id, sampling factors, blocks in its own scans."""

    ident: int
    h: int
    v: int
    blocks: int


def _uses_dc_only(h: int, v: int, h_max: int, v_max: int) -> bool:
    """True when libjpeg-turbo decodes this component at 1/8 with the 1x1 inverse DCT.

    ``jpeg_core_output_dimensions`` (libjpeg-turbo ``jdmaster.c``) doubles a
    component's inverse-DCT size from the minimum (1 at 1/8) while
    ``h_max * 1`` is a multiple of ``h * size * 2`` and the same holds
    vertically; a full-resolution component never passes, a 4:2:0 chroma
    component does once (2x2), a 4:2:2 one does not (its vertical factor is full).
    """
    return h_max % (2 * h) != 0 or v_max % (2 * v) != 0


def _frame(header: bytes) -> list[_Component] | None:
    """Parse a SOF2 segment body (after the length): the components, or None if not 8-bit."""
    precision, height, width, count = header[0], int.from_bytes(header[1:3], "big"), \
        int.from_bytes(header[3:5], "big"), header[5]
    if precision != 8 or height == 0 or width == 0 or len(header) < 6 + 3 * count:
        return None
    factors = [(header[6 + 3 * i], header[7 + 3 * i] >> 4, header[7 + 3 * i] & 15)
               for i in range(count)]
    h_max, v_max = max(f[1] for f in factors), max(f[2] for f in factors)
    if min(min(f[1], f[2]) for f in factors) < 1:
        return None
    # A non-interleaved scan covers exactly the component's own blocks, not whole MCUs
    # (T.81 A.2.2; libjpeg ``width_in_blocks`` = ceil(X * h / (h_max * 8))).
    return [_Component(ident, h, v,
                       _ceil_div(width * h, h_max * 8) * _ceil_div(height * v, v_max * 8))
            for ident, h, v in factors]


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _eob_scan(component: int, blocks: int) -> bytes:
    """An AC-first scan (Ss=1, Se=63, Ah=Al=0) of one component: every block end-of-band.

    Coded as EOBRUN symbols of at most :data:`_MAX_EOBRUN` blocks each with the
    table of :data:`_EOB_DHT`; the last byte is padded with 1-bits and every
    0xFF byte is stuffed with 0x00 (T.81 F.1.2.3).
    """
    bits, length = 0, 0
    while blocks:
        run = min(blocks, _MAX_EOBRUN)
        r = run.bit_length() - 1  # EOBr: a run of 2**r + (r extra bits) blocks
        bits = (bits << (4 + r)) | (r << r) | (run - (1 << r))
        length += 4 + r
        blocks -= run
    pad = -length % 8
    data = ((bits << pad) | ((1 << pad) - 1)).to_bytes((length + pad) // 8, "big")
    header = bytes([1, component, _EOB_TABLE_ID, 1, 63, 0])
    return (b"\xff\xda" + (2 + len(header)).to_bytes(2, "big") + header
            + data.replace(b"\xff", b"\xff\x00"))


def skip_unused_ac_scans(data: bytes) -> bytes | None:
    """Rewrite a progressive JPEG for a 1/8-scale decode that reads only what it uses.

    ``data`` is a whole JPEG file. Returns the rewritten file, which a libjpeg
    (libjpeg-turbo or plain) 1/8-scale decode turns into exactly the same pixels
    as the original, or ``None`` when the file is not one this applies to (see
    the module docstring) or nothing would be skipped. Never raises on bad
    input: what does not parse is left to the decoder to report.

    Only valid for a decode at 1/8 scale (Pillow ``draft`` choosing 8): at any
    other scale the rewritten file decodes to a blurred picture.
    """
    if not data.startswith(b"\xff\xd8"):
        return None
    kept: list[bytes] = [data[:2]]
    components: list[_Component] | None = None
    skippable: set[int] = set()
    pos, end, skipped = 2, len(data), 0
    while True:
        found = _MARKER.search(data, pos)
        if found is None or found.start() + 2 > end:
            return None  # no EOI: a truncated file keeps failing in the decoder
        start = found.start()
        code = data[start + 1]
        if code == _EOI:
            break
        if code == _SOI or code in _OTHER_FRAMES or code == _DNL or start + 4 > end:
            return None
        segment_end = start + 2 + int.from_bytes(data[start + 2:start + 4], "big")
        if segment_end > end:
            return None
        body = data[start + 4:segment_end]
        if code == _PROGRESSIVE_HUFFMAN:
            components = _frame(body)
            if components is None:
                return None
            h_max, v_max = max(c.h for c in components), max(c.v for c in components)
            skippable = {c.ident for c in components if _uses_dc_only(c.h, c.v, h_max, v_max)}
        elif code == _DRI and int.from_bytes(body[:2], "big") != 0:
            return None
        if code != _SOS:
            kept.append(data[start:segment_end])
            pos = segment_end
            continue
        if components is None or len(body) < 1 + 2 * body[0] + 3:
            return None
        scan_end_match = _MARKER.search(data, segment_end)
        scan_end = scan_end_match.start() if scan_end_match else end
        spectral_start = body[1 + 2 * body[0]]
        if spectral_start > 0 and body[0] == 1 and body[1] in skippable:
            skipped += 1
        else:
            kept.append(data[start:scan_end])
        pos = scan_end
    if components is None or skipped == 0:
        return None
    kept.append(_EOB_DHT)
    kept.extend(_eob_scan(c.ident, c.blocks) for c in components if c.ident in skippable)
    kept.append(b"\xff\xd9")
    return b"".join(kept)
