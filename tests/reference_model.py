"""The committed reference model (``models/reference/``) and real images to run it on.

``digits3_int8.tflite`` is a full-integer classifier of scikit-learn's handwritten
digits 0, 1 and 2 at 16x16 RGB, rebuilt by ``models/reference/make_reference.py``.
No images are committed: :func:`write_digit_samples` writes real digits as PNGs
with the writer that script uses (:mod:`tests.digit_images`) into class folders
named like the model's labels.
"""

from __future__ import annotations

from pathlib import Path

from tests.digit_images import write_digit_images

REFERENCE = Path(__file__).resolve().parents[1] / "models" / "reference"
MODEL = REFERENCE / "digits3_int8.tflite"
CLASSES = ["zero", "one", "two"]
SIZE = 16


def write_digit_samples(root: Path, per_class: int = 15, seed: int = 1) -> list[Path]:
    """``per_class`` real digits per class as ``root/<class>/<index>.png``; sorted paths."""
    paths, _, _ = write_digit_images(root, per_class, SIZE, seed, CLASSES)
    return sorted(root / p for p in paths)
