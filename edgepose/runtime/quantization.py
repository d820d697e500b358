"""Move values between float and a tensor's integer representation.

TFLite stores an integer tensor ``q`` that stands for ``scale * (q - zero_point)``;
so ``q = clip(round(x / scale) + zero_point)`` and ``x = scale * (q - zero_point)``.
Rounding is numpy's round-half-to-even, like TFLite's own QUANTIZE kernel
on the values calibration produces.
"""

from __future__ import annotations

import numpy as np


def tensor_quantization(detail: dict) -> tuple[float, int] | None:
    """``(scale, zero_point)`` of an interpreter tensor detail, or None for float tensors."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.issubdtype(detail["dtype"], np.floating) or not scale:
        return None
    return float(scale), int(zero_point)


def quantize(values: np.ndarray, detail: dict, out: np.ndarray | None = None) -> np.ndarray:
    """Convert real values to the dtype of tensor ``detail`` (rounding, saturating)."""
    dtype = np.dtype(detail["dtype"])
    params = tensor_quantization(detail)
    if params is None:
        if out is None:
            return np.asarray(values, dtype=dtype)
        np.copyto(out, values, casting="unsafe")
        return out
    scale, zero_point = params
    info = np.iinfo(dtype)
    q = np.clip(np.round(np.asarray(values, dtype=np.float32) / np.float32(scale)) + zero_point,
                info.min, info.max)
    if out is None:
        return q.astype(dtype)
    np.copyto(out, q, casting="unsafe")
    return out


def dequantize(values: np.ndarray, detail: dict, out: np.ndarray | None = None) -> np.ndarray:
    """Convert a tensor's stored values back to float32 real values."""
    params = tensor_quantization(detail)
    if params is None:
        if out is None:
            return np.asarray(values, dtype=np.float32)
        np.copyto(out, values, casting="unsafe")
        return out
    scale, zero_point = params
    if out is None:
        return (np.asarray(values, dtype=np.float32) - np.float32(zero_point)) * np.float32(scale)
    np.subtract(values, np.float32(zero_point), out=out, dtype=np.float32)
    out *= np.float32(scale)
    return out


class InputQuantizer:
    """Write real-valued samples into an input tensor's buffer without allocating.

    A uint8 image (0..255) going into an integer tensor goes through a 256-entry
    lookup table computed once with :func:`quantize`, so it is bit-identical to
    quantizing each pixel. When that table is a plain shift (scale 1, as for
    models taking raw 0..255 pixels: ``q = x + zero_point``) one integer add
    replaces the lookup, ~15x faster. Other values use a preallocated float32
    scratch array.
    """

    def __init__(self, detail: dict, sample_shape: tuple[int, ...]):
        self.detail = detail
        self.dtype = np.dtype(detail["dtype"])
        self.params = tensor_quantization(detail)
        self._lut = (quantize(np.arange(256, dtype=np.float32), detail)
                     if self.params is not None else None)
        self._scratch = np.empty(sample_shape, dtype=np.float32) if self.params else None
        self._shift: np.int16 | None = None
        if self._lut is not None:
            offset = int(self._lut[0])
            if np.array_equal(self._lut.astype(np.int64), np.arange(256) + offset):
                self._shift = np.int16(offset)

    def __call__(self, values: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Quantize ``values`` (same shape as ``out``) into ``out``."""
        if self.params is None:
            np.copyto(out, values, casting="unsafe")
            return out
        if values.dtype == np.uint8:
            if self._shift is not None:
                np.add(values, self._shift, out=out, casting="unsafe")
            else:
                np.take(self._lut, values, out=out)
            return out
        scale, zero_point = self.params
        scratch = self._scratch
        np.divide(values, np.float32(scale), out=scratch, casting="unsafe")
        np.round(scratch, out=scratch)
        scratch += np.float32(zero_point)
        info = np.iinfo(self.dtype)
        np.clip(scratch, info.min, info.max, out=scratch)
        np.copyto(out, scratch, casting="unsafe")
        return out
