"""Image preprocessing shared by training, conversion and the device.

The trainer, the converter's calibration and drift checks, and the Pi all turn
an image into the model's input through :func:`image_to_array`, so the same
image always becomes the same array. Models take raw RGB 0..255: any
backbone-specific normalisation lives inside the model graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edgepose.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "bicubic": Image.Resampling.BICUBIC,
    "area": Image.Resampling.BOX,
}


@dataclass(frozen=True)
class ImagePreprocessing:
    """How an RGB image becomes a model input of ``height x width x 3``.

    ``crop`` is ``"none"`` (stretch the whole image) or ``"center"`` (crop the
    largest centred region with the model's aspect ratio, then resize).
    """

    height: int
    width: int
    resize: str = "bilinear"
    crop: str = "none"

    def __post_init__(self) -> None:
        if self.resize not in _RESAMPLE:
            raise ValueError(f"resize must be one of {sorted(_RESAMPLE)}, not {self.resize!r}")
        if self.crop not in ("none", "center"):
            raise ValueError(f"crop must be 'none' or 'center', not {self.crop!r}")

    def to_dict(self) -> dict:
        return {"height": self.height, "width": self.width, "resize": self.resize,
                "crop": self.crop}

    @classmethod
    def from_dict(cls, data: dict) -> ImagePreprocessing:
        return cls(int(data["height"]), int(data["width"]), data.get("resize", "bilinear"),
                   data.get("crop", "none"))


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode (L, LA, P, RGBA, CMYK, I;16, F, ...) to 8-bit RGB."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit greyscale (Pillow opens 16-bit PGM as "I") maps 0..65535 to 0..255;
        # wider integer or float data is scaled by its own maximum.
        arr = np.asarray(img, dtype=np.float64)
        top = max(float(arr.max()), 1.0)
        if img.mode.startswith("I;16") or (img.mode == "I" and arr.min() >= 0 and top <= 65535):
            top = 65535.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite transparency over white, as image viewers show it.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_rgb(path: str | Path) -> Image.Image:
    """Decode an image file to 8-bit RGB, honouring its EXIF orientation.

    Raises :class:`DataError` naming the file when it is empty, truncated or
    not an image.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img) or img
            return _to_rgb(img)
    except FileNotFoundError:
        raise DataError("file not found", path) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = "empty file" if path.exists() and path.stat().st_size == 0 else \
            f"not a readable image ({exc.__class__.__name__}: {exc})"
        raise DataError(reason, path) from None


def as_rgb_image(image: str | Path | Image.Image | np.ndarray) -> Image.Image:
    """Accept a file path, a PIL image or an HxWx3 / HxW uint8 array; return RGB PIL."""
    if isinstance(image, (str, Path)):
        return load_rgb(image)
    if isinstance(image, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(image) or image)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise DataError(f"expected an HxWx3 RGB array, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr[..., :3], mode="RGB")


def _center_crop_box(size: tuple[int, int], height: int, width: int) -> tuple[int, int, int, int]:
    src_w, src_h = size
    target_ratio = width / height
    if src_w / src_h > target_ratio:
        crop_w, crop_h = round(src_h * target_ratio), src_h
    else:
        crop_w, crop_h = src_w, round(src_w / target_ratio)
    left, top = (src_w - crop_w) // 2, (src_h - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


def image_to_array(image: str | Path | Image.Image | np.ndarray, spec: ImagePreprocessing,
                   out: np.ndarray | None = None) -> np.ndarray:
    """Return the model input for one image: ``uint8`` array ``height x width x 3``.

    Pass ``out`` (a preallocated uint8 array of that shape) to avoid allocating
    in a hot loop.
    """
    img = as_rgb_image(image)
    box = _center_crop_box(img.size, spec.height, spec.width) if spec.crop == "center" else None
    if img.size != (spec.width, spec.height) or box is not None:
        img = img.resize((spec.width, spec.height), _RESAMPLE[spec.resize], box=box)
    if out is None:
        return np.asarray(img, dtype=np.uint8).copy()
    out[...] = np.asarray(img, dtype=np.uint8)
    return out
