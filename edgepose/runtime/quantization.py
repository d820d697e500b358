"""Move values between float and a tensor's integer representation.

TFLite stores an integer tensor ``q`` that stands for ``scale * (q - zero_point)``.
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
        out[...] = values
        return out
    scale, zero_point = params
    info = np.iinfo(dtype)
    q = np.clip(np.round(np.asarray(values, dtype=np.float32) / scale) + zero_point,
                info.min, info.max)
    if out is None:
        return q.astype(dtype)
    out[...] = q
    return out


def dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    """Convert a tensor's stored values back to float32 real values."""
    params = tensor_quantization(detail)
    if params is None:
        return np.asarray(values, dtype=np.float32)
    scale, zero_point = params
    return (np.asarray(values, dtype=np.float32) - zero_point) * scale
