"""Real handwritten digits as small RGB PNGs in class folders: the one writer the tests,
benchmarks and ``models/reference/make_reference.py`` share.

scikit-learn's 8x8 digit scans (values 0..16) are scaled to 0..255 grey, upscaled
bilinearly to ``size`` pixels and saved as RGB PNGs ``root/<class>/<index>.png``
(``index``: the row in ``load_digits``). No images are committed; the same seed
writes the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def write_digit_images(root: Path, per_class: int = 30, size: int = 32, seed: int = 0,
                       classes: Sequence[str] | None = None
                       ) -> tuple[list[str], list[int], list[str]]:
    """Write ``per_class`` seeded, randomly chosen digits of each class under ``root``.

    ``classes`` names the folders of digits 0, 1, ... (default: all ten, ``"0"`` to
    ``"9"``). Returns (paths relative to ``root``, labels, class names).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    classes = list(classes) if classes is not None else [str(c) for c in range(10)]
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        indices = np.flatnonzero(digits.target == label)
        chosen = rng.choice(indices, size=min(per_class, len(indices)), replace=False)
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in sorted(chosen):
            grey = (digits.images[index] / 16.0 * 255.0).astype(np.uint8)
            img = Image.fromarray(grey, mode="L").resize((size, size), Image.Resampling.BILINEAR)
            rel = f"{name}/{index:04d}.png"
            img.convert("RGB").save(root / rel)
            paths.append(rel)
            labels.append(label)
    return paths, labels, classes
