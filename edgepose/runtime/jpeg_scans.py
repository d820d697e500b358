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
restart inside), DNL markers, anything that does not parse to its EOI marker
(a truncated file must keep failing the way it fails), any header libjpeg would
stop on (so a refused file stays refused), and a file that leaves some
coefficient short of full precision (a progression that skips coefficients, or
a partial download closed with an EOI): libjpeg smooths those blocks, which at
1/8 changes their DC output, and the empty scans would switch that off.
Adversarial cases made with libjpeg-turbo's cjpeg and jpegtran are in
``tests/test_runtime_jpeg_scans_encoders.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A marker in entropy-coded data: 0xFF followed by anything but a stuffed 0x00, a
# restart marker RST0-7 (0xD0-0xD7) or another 0xFF fill byte (T.81 B.1.1.2, F.1.2.3).
_MARKER = re.compile(rb"\xff(?![\x00\xd0-\xd7\xff])")

_SOI, _EOI, _SOS, _DRI, _DNL, _DHT = 0xD8, 0xD9, 0xDA, 0xDD, 0xDC, 0xC4
_PROGRESSIVE_HUFFMAN = 0xC2  # SOF2
# Other frame types: baseline/extended/lossless/hierarchical/arithmetic (T.81 Table B.1).
_OTHER_FRAMES = frozenset({0xC0, 0xC1, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                           0xCF})

_NOT_SENT = -1  # a coefficient's precision before any scan sends it (libjpeg coef_bits)
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
    """Parse a SOF2 segment body (after the length): the components, or None where it is not
    an 8-bit frame libjpeg accepts (T.81 B.2.2: 1-4 components of distinct ids, sampling
    factors 1-4, a length that fits them exactly)."""
    precision, height, width, count = header[0], int.from_bytes(header[1:3], "big"), \
        int.from_bytes(header[3:5], "big"), header[5]
    if precision != 8 or height == 0 or width == 0 or not 1 <= count <= 4 \
            or len(header) != 6 + 3 * count:
        return None
    factors = [(header[6 + 3 * i], header[7 + 3 * i] >> 4, header[7 + 3 * i] & 15)
               for i in range(count)]
    if len({f[0] for f in factors}) != count or not all(1 <= f[1] <= 4 and 1 <= f[2] <= 4
                                                       for f in factors):
        return None
    h_max, v_max = max(f[1] for f in factors), max(f[2] for f in factors)
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
    input: what does not parse, or what libjpeg would refuse, is left to the
    decoder to report.

    Only valid for a decode at 1/8 scale (Pillow ``draft`` choosing 8): at any
    other scale the rewritten file decodes to a blurred picture.
    """
    try:
        return _rewrite(data)
    except (IndexError, ValueError):  # a segment shorter than its own fields
        return None


def _rewrite(data: bytes) -> bytes | None:
    """:func:`skip_unused_ac_scans` without the guard against short segments."""
    if not data.startswith(b"\xff\xd8"):
        return None
    kept: list[bytes] = [data[:2]]
    components: list[_Component] | None = None
    skippable: set[int] = set()
    precision: dict[int, list[int]] = {}  # per component: the point transform Al last sent
    ac_tables: set[int] = set()
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
        length = int.from_bytes(data[start + 2:start + 4], "big")
        if length < 2 or start + 2 + length > end:
            return None  # libjpeg reads a length below 2 its own way: do not guess it
        segment_end = start + 2 + length
        body = data[start + 4:segment_end]
        if code == _PROGRESSIVE_HUFFMAN:
            if components is not None:
                return None
            components = _frame(body)
            if components is None:
                return None
            h_max, v_max = max(c.h for c in components), max(c.v for c in components)
            skippable = {c.ident for c in components if _uses_dc_only(c.h, c.v, h_max, v_max)}
            precision = {c.ident: [_NOT_SENT] * 64 for c in components}
        elif code == _DRI and int.from_bytes(body[:2], "big") != 0:
            return None
        elif code == _DHT:
            tables = _defined_tables(body)
            if tables is None:
                return None
            ac_tables |= {table & 15 for table in tables if table >> 4}
        if code != _SOS:
            kept.append(data[start:segment_end])
            pos = segment_end
            continue
        scan = _scan(body, precision)
        if scan is None:
            return None  # libjpeg stops on this scan header: leave that to it
        scan_end_match = _MARKER.search(data, segment_end)
        scan_end = scan_end_match.start() if scan_end_match else end
        if scan.first > 0 and scan.components[0] in skippable:
            if scan.ac_table not in ac_tables:
                return None  # libjpeg: "Huffman table not defined"
            skipped += 1
        else:
            kept.append(data[start:scan_end])
        pos = scan_end
    if components is None or skipped == 0:
        return None
    if any(bits[k] != 0 for bits in precision.values() for k in range(1, 64)):
        # A coefficient the file never sends at full precision switches libjpeg's block
        # smoothing on, which changes the DC values a 1/8 decode outputs (jdcoefct.c,
        # decompress_smooth_data); the empty scans would switch it off.
        return None
    kept.append(_EOB_DHT)
    kept.extend(_eob_scan(c.ident, c.blocks) for c in components if c.ident in skippable)
    kept.append(b"\xff\xd9")
    return b"".join(kept)


@dataclass(frozen=True)
class _Scan:
    """A scan header's fields this rewrite needs."""

    components: list[int]
    first: int  # Ss: the first coefficient of the band (0: DC)
    ac_table: int  # Ta of the first component


def _scan(body: bytes, precision: dict[int, list[int]]) -> _Scan | None:
    """Parse and check an SOS segment body as libjpeg does; record what it sends.

    None where libjpeg stops with an error (T.81 G.1.1.1.1, libjpeg-turbo
    ``jdphuff.c`` ``start_pass_phuff_decoder``): a component count or length that
    does not match, an unknown or repeated component, a DC band with Se > 0, an AC
    band out of 1..63 or over several components, a refinement not one bit below
    the last, Al over 13. ``precision`` (per component, the Al last sent for each
    coefficient) is updated.
    """
    count = body[0]
    if not 1 <= count <= 4 or len(body) != 1 + 2 * count + 3:
        return None
    idents = [body[1 + 2 * i] for i in range(count)]
    first, last, approximation = body[1 + 2 * count], body[2 + 2 * count], body[3 + 2 * count]
    high, low = approximation >> 4, approximation & 15
    if any(i not in precision for i in idents) or len(set(idents)) != count:
        return None
    bad_band = last != 0 if first == 0 else (first > last or last > 63 or count != 1)
    if bad_band or (high != 0 and low != high - 1) or low > 13:
        return None
    for ident in idents:
        precision[ident][first:last + 1] = [low] * (last + 1 - first)
    return _Scan(idents, first, body[2] & 15)


def _defined_tables(body: bytes) -> list[int] | None:
    """The ``Tc << 4 | Th`` of each Huffman table a DHT segment body defines; None if it
    does not parse (T.81 B.2.4.2: class and id, 16 code counts, then the symbols)."""
    tables, i = [], 0
    while i < len(body):
        if i + 17 > len(body):
            return None
        class_and_id, symbols = body[i], sum(body[i + 1:i + 17])
        if class_and_id & 0xEC or symbols > 256:
            return None
        tables.append(class_and_id)
        i += 17 + symbols
    return tables
