"""Models and images shared by the augmentation tests and the issue-11 field case.

Plain helpers (no fixtures): ``tests/test_converters_augmentation.py`` and
``benchmarks/field_cases.py`` import them as ``tests.augmentation_models``.
"""

from __future__ import annotations

import numpy as np

ATOL = 1e-5  # fp32 TFLite vs Keras: op-order round-off only


def digit_images(size: int, count: int = 12) -> np.ndarray:
    """Real images: scikit-learn's 8x8 digits, upscaled to ``size`` px RGB 0..255 float32."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits().images[:count]
    out = np.zeros((count, size, size, 3), dtype=np.float32)
    for i, digit in enumerate(digits):
        gray = Image.fromarray((digit * 255 / 16).astype(np.uint8)).resize((size, size))
        out[i] = np.repeat(np.asarray(gray, dtype=np.float32)[..., None], 3, axis=-1)
    return out


# quantized modes: weight (and activation) rounding on small untrained models
MODE_ATOL = {"fp32": ATOL, "fp16": 1e-3, "dynamic": 2e-2, "int8": 5e-2}


def tutorial_model():
    """The Keras tutorial shape: RandomFlip + RandomRotation, Rescaling, a small CNN, Dropout
    (seeded; also the issue-11 field case in benchmarks/field_cases.py)."""
    import keras

    keras.utils.set_random_seed(1)
    return keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.RandomFlip("horizontal"),
        keras.layers.RandomRotation(0.2),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(3, activation="softmax"),
    ], name="tutorial")
