"""The committed reference model (``models/reference/``) and real images to run it on.

``digits3_int8.tflite`` is a full-integer classifier of scikit-learn's handwritten
digits 0, 1 and 2 at 16x16 RGB, rebuilt by ``models/reference/make_reference.py``.
No images are committed: :func:`write_digit_samples` writes real digits as PNGs
the same way that script did (8x8 originals upscaled bilinearly, grey as RGB)
into class folders named like the model's labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

REFERENCE = Path(__file__).resolve().parents[1] / "models" / "reference"
MODEL = REFERENCE / "digits3_int8.tflite"
CLASSES = ["zero", "one", "two"]
SIZE = 16


def write_digit_samples(root: Path, per_class: int = 15, seed: int = 1) -> list[Path]:
    """``per_class`` real digits per class as ``root/<class>/<index>.png``; sorted paths."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    paths = []
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        chosen = rng.choice(np.flatnonzero(digits.target == label), per_class, replace=False)
        for index in sorted(chosen):
            grey = (digits.images[index] / 16.0 * 255.0).astype(np.uint8)
            image = Image.fromarray(grey, mode="L").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
            path = root / name / f"{index:04d}.png"
            image.convert("RGB").save(path)
            paths.append(path)
    return sorted(paths)
