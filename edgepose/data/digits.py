"""The bundled real dataset: scikit-learn's handwritten digits as an image folder.

``load_digits()`` ships inside scikit-learn (1797 real 8x8 scans of handwritten
digits from 43 writers, values 0..16), so nothing is downloaded. Each one is
written as ``OUT/<digit>/<index>.png``: an 8-bit greyscale PNG, ink bright on a
dark background, upscaled with a bicubic filter so it looks like a small
photo rather than a block of squares. ``index`` is the row in ``load_digits``.

scikit-learn is a host-side extra (``edgepose[train]``) and is imported only
when the dataset is written.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edgepose.errors import ConfigError, DataError
from edgepose.extras import train_extra_hint
from edgepose.fileio import read_json, write_bytes, write_json

MARKER = ".edgepose-digits.json"  # written last: a folder with it is complete
_MIN_SIZE, _MAX_SIZE = 8, 1024


@dataclass
class DigitsDataset:
    """Where the digits were written and what is there."""

    path: str
    size: int
    classes: list[str]
    counts: dict[str, int]
    total: int
    reused: bool  # True when a complete folder from an earlier run was kept


def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ConfigError(train_extra_hint("the bundled digits dataset", ["sklearn"])) from None
    return load_digits()


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DataError("exists and is not a folder; give a folder for the digits dataset", out)
    if out.is_dir():
        names = {p.name for p in out.iterdir()}
        foreign = sorted(names - {str(d) for d in range(10)} - {MARKER})
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise DataError(f"folder is not empty ({shown}); choose a new or empty folder", out)


def _complete(out: Path, size: int) -> DigitsDataset | None:
    """The earlier run's record if ``out`` holds every file it lists at this size."""
    marker = out / MARKER
    if not marker.is_file():
        return None
    try:
        record = DigitsDataset(**read_json(marker))
    except (DataError, TypeError):
        return None
    if record.size != size:
        return None
    for name, count in record.counts.items():
        if len(list((out / name).glob("*.png"))) != count:
            return None
    record.path, record.reused = str(out), True
    return record


def _png(pixels: np.ndarray, size: int) -> bytes:
    grey = np.round(pixels * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(grey).resize((size, size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def build_digits(out_dir: str | Path, size: int = 64) -> DigitsDataset:
    """Write the 1797 digits as ``OUT/<0..9>/<index>.png`` of ``size x size`` pixels.

    Idempotent: a complete folder from an earlier run at the same size is kept
    as it is. Raises :class:`DataError` if ``out_dir`` is a file or a non-empty
    folder of something else, :class:`ConfigError` for a bad size or when
    scikit-learn is missing.
    """
    if not _MIN_SIZE <= int(size) <= _MAX_SIZE:
        raise ConfigError(f"digit image size must be {_MIN_SIZE}..{_MAX_SIZE} pixels, got {size}")
    size = int(size)
    out = Path(out_dir).expanduser()
    _check_out(out)
    done = _complete(out, size)
    if done is not None:
        return done
    digits = _load_digits()
    classes = [str(int(c)) for c in digits.target_names]
    try:
        for index, (pixels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
            write_bytes(out / str(int(target)) / f"{index:04d}.png", _png(pixels, size))
    except OSError as exc:
        raise DataError(f"cannot write the digits dataset ({exc.strerror or exc})", out) from None
    counts = {name: int(np.sum(digits.target == int(name))) for name in classes}
    record = DigitsDataset(path=str(out), size=size, classes=classes, counts=counts,
                           total=int(len(digits.target)), reused=False)
    write_json(out / MARKER, record)
    return record


def write_digits(out_dir: str | Path, size: int = 64) -> Path:
    """Write the digits image folder (see :func:`build_digits`) and return ``out_dir``."""
    return Path(build_digits(out_dir, size).path)
