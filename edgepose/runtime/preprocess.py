"""Image preprocessing shared by training, conversion and the device.

The trainer, the converter's calibration and drift checks, and the Pi all turn
an image into the model's input through :func:`image_to_array`, so the same
image always becomes the same array. Models take raw RGB 0..255: any
backbone-specific normalisation lives inside the model graph.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from edgepose.errors import DataError, ImageTooLarge
from edgepose.runtime.jpeg_scans import skip_unused_ac_scans

# .jpe/.jfif: other JPEG names; .mpo: a multi-picture JPEG (decoded as its first picture).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".png", ".bmp", ".gif", ".webp",
                  ".tif", ".tiff", ".ppm", ".pgm")

_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "bicubic": Image.Resampling.BICUBIC,
    "area": Image.Resampling.BOX,
}


@dataclass(frozen=True)
class ImagePreprocessing:
    """How an image becomes a model input of ``height x width x channels``.

    ``crop`` is ``"none"`` (stretch the whole image) or ``"center"`` (crop the
    largest centred region with the model's aspect ratio, then resize).
    ``channels`` is 3 (RGB) or 1 (greyscale: Pillow's ``convert("L")`` luma,
    ITU-R 601-2 ``L = 0.299 R + 0.587 G + 0.114 B``, which keeps a grey picture's
    values exactly).
    """

    height: int
    width: int
    resize: str = "bilinear"
    crop: str = "none"
    channels: int = 3

    def __post_init__(self) -> None:
        if self.resize not in _RESAMPLE:
            raise ValueError(f"resize must be one of {sorted(_RESAMPLE)}, not {self.resize!r}")
        if self.crop not in ("none", "center"):
            raise ValueError(f"crop must be 'none' or 'center', not {self.crop!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, not {self.channels!r}")

    def to_dict(self) -> dict:
        """JSON form; ``channels`` is written only for greyscale (absent means 3)."""
        data = {"height": self.height, "width": self.width, "resize": self.resize,
                "crop": self.crop}
        if self.channels != 3:
            data["channels"] = self.channels
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ImagePreprocessing:
        return cls(int(data["height"]), int(data["width"]), data.get("resize", "bilinear"),
                   data.get("crop", "none"), int(data.get("channels", 3)))


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


MAX_IMAGE_PIXELS = 40_000_000
"""The most pixels edgepose decodes from one image (40 megapixels).

Why this number: the largest pictures users feed edgepose are 12 MP from a Pi
camera (Camera Module 3, HQ camera) and 24 MP from phones and DSLRs; 40 MP
leaves room for those. A decoded image costs 4 bytes per pixel inside Pillow
plus 3 for the numpy copy, and a 1-bit or palette file adds one more during
conversion: about 8 bytes per pixel, so 320 MB at the cap, which a 1 GB
Raspberry Pi running the service (about 120 MB resident) can still afford.
Pillow's own limit (``Image.MAX_IMAGE_PIXELS``, 89 MP warning, 179 MP error)
allows 1.4 GB for one picture: an out-of-memory kill on a 1-4 GB Pi, from a
17 KB PNG. The cap counts the pixels that are actually held: a baseline JPEG
that is decoded reduced (:func:`load_rgb` with ``reduce_to``) is checked at its
reduced size, a progressive JPEG at its stored size (libjpeg keeps all of its
DCT coefficients, 3-6 bytes per pixel, at any decode scale).
"""

# edgepose enforces its stricter cap itself; Pillow's warning at 89 MP would only
# repeat it as noise on stderr.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# EXIF orientations 5-8 rotate by 90 degrees: the stored width is the shown height.
_ROTATED_ORIENTATIONS = (5, 6, 7, 8)


def _check_pixels(size: tuple[int, int], path: str | Path | None, what: str = "image",
                  why: str = "") -> None:
    """Raise :class:`ImageTooLarge` when ``size`` (width, height) is over the cap.

    ``what`` names the picture in the message, ``why`` (if any) is appended to it.
    """
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageTooLarge(f"{what} is {width}x{height} = {width * height / 1e6:.1f} megapixels, "
                            f"over edgepose's decode limit of {MAX_IMAGE_PIXELS / 1e6:.0f} "
                            f"megapixels{why}", path)


def _bomb(exc: Image.DecompressionBombError, path: str | Path | None) -> ImageTooLarge:
    """Pillow refuses beyond 179 MP while reading the header, before edgepose's own check."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1)) / 1e6:.1f} megapixels" if found else "too many pixels"
    return ImageTooLarge(f"image is {size}, over edgepose's decode limit of "
                         f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels", path)


def _reduce_on_load(img: Image.Image, reduce_to: tuple[int, int]) -> int:
    """Ask a lazily opened JPEG to decode at 1/2, 1/4 or 1/8 scale, no smaller than needed.

    ``reduce_to`` is the ``(width, height)`` the picture will be resized to, as
    shown (after EXIF rotation). Pillow's ``Image.draft`` picks the largest
    libjpeg DCT scaling that keeps both sides at least that big, so the one
    resize that follows still starts from at least the model's resolution; a
    12 MP photo decodes as 0.2 MP for a 224x224 model. Other formats ignore it.
    Returns the scale divisor chosen (1, 2, 4 or 8; 1 when nothing was reduced).
    """
    width, height = reduce_to
    if img.getexif().get(0x0112) in _ROTATED_ORIENTATIONS:
        width, height = height, width
    stored_width = img.size[0]
    drafted = img.draft(None, (max(int(width), 1), max(int(height), 1)))
    # draft() returns the box of the stored picture in output pixels: stored / scale.
    return round(stored_width / drafted[1][2]) if drafted else 1


# Pillow opens a JPEG carrying more than one picture (CIPA DC-007 Multi-Picture Format: the
# depth map or preview phones and stereo cameras append) as "MPO"; its first picture, the
# one shown and classified, is an ordinary JPEG that libjpeg can scale the same way.
_JPEG_FORMATS = ("JPEG", "MPO")


def _is_progressive(img: Image.Image) -> bool:
    """True for a progressive JPEG (SOF2/6/10/14), which Pillow flags in ``info``."""
    return img.format in _JPEG_FORMATS and bool(img.info.get("progressive")
                                                 or img.info.get("progression"))


def _plan(img: Image.Image, path: str | Path | None,
          reduce_to: tuple[int, int] | None) -> int:
    """From the header alone: choose the decode scale (``draft``), then apply the pixel cap.

    The cap counts what the decode holds in memory: the reduced size for a
    baseline JPEG decoded reduced, but the stored size for a progressive one.
    libjpeg decodes a multi-scan (progressive) file into a full-image buffer of
    DCT coefficients, 2 bytes each (3 bytes per pixel at 4:2:0, 6 at 4:4:4),
    whatever the output scale (libjpeg-turbo ``libjpeg.txt``, "Memory usage",
    item 3): a 100 MP progressive JPEG drafted to 1/8 still needs 300-600 MB.

    Returns the decode scale divisor (1, 2, 4 or 8).

    Raises:
        ImageTooLarge: over :data:`MAX_IMAGE_PIXELS` (nothing decoded yet).
    """
    stored = img.size
    scale = 1
    if reduce_to is not None and img.format in _JPEG_FORMATS:
        scale = _reduce_on_load(img, reduce_to)
    _check_pixels(img.size, path)  # before load(): nothing of the picture is in memory yet
    if img.size != stored and _is_progressive(img):
        _check_pixels(stored, path, "progressive JPEG",
                      " (libjpeg holds all of a progressive file in memory at any decode "
                      "scale)")
    return scale


def _upright(img: Image.Image, in_place: bool) -> Image.Image:
    """Apply the EXIF orientation; ``in_place`` (an image opened here) avoids Pillow's copy.

    ``ImageOps.exif_transpose`` returns a copy of the whole decoded picture even
    when there is nothing to rotate; an image edgepose opened itself is nobody
    else's, so it is transposed in place and returned as it is.
    """
    if in_place:
        ImageOps.exif_transpose(img, in_place=True)
        return img
    return ImageOps.exif_transpose(img) or img


def _decode(img: Image.Image, path: str | Path | None,
            reduce_to: tuple[int, int] | None, owned: bool = False) -> Image.Image:
    """Decode a lazily opened image to RGB: draft, pixel cap from the header, then load.

    ``owned``: ``img`` was opened by edgepose (not a caller's object), so the EXIF
    rotation may change it in place.
    """
    scale = _plan(img, path, reduce_to)
    loaded = _load(img, scale, reduce_to)
    return _to_rgb(_upright(loaded, in_place=owned or loaded is not img))


def _load(img: Image.Image, scale: int, reduce_to: tuple[int, int] | None) -> Image.Image:
    """Decode a planned image (:func:`_plan`): ``img`` loaded, or the same pixels faster.

    A progressive JPEG drafted to 1/8 is decoded from a copy without the AC
    scans that decode never reads (:func:`_decode_progressive_eighth`), a new
    image with the same pixels and EXIF; anything else is ``img.load()``.
    """
    if scale == 8 and reduce_to is not None and _is_progressive(img):
        eighth = _decode_progressive_eighth(img, reduce_to)
        if eighth is not None:
            return eighth
    img.load()
    return img


def _decode_progressive_eighth(img: Image.Image,
                               reduce_to: tuple[int, int]) -> Image.Image | None:
    """Decode a progressive JPEG drafted to 1/8 without its unused AC scans, or None.

    The same pixels as ``img.load()`` (see :mod:`edgepose.runtime.jpeg_scans`),
    about 4x faster for a 12 MP photo. ``None`` (the caller decodes ``img`` as
    usual, so any error names the original file) when the file cannot be read
    again from the start, is not one the rewrite applies to, or the rewritten
    stream does not decode.
    """
    fp = getattr(img, "fp", None)
    if fp is None or not hasattr(fp, "seek"):
        return None
    try:
        fp.seek(0)  # Pillow reads an image from the start of its file object
        rewritten = skip_unused_ac_scans(fp.read())
        if rewritten is None:
            return None
        eighth = Image.open(io.BytesIO(rewritten))
        if _reduce_on_load(eighth, reduce_to) != 8:
            return None
        eighth.load()
    except (OSError, SyntaxError, ValueError):
        return None
    return eighth


def load_rgb(path: str | Path | BinaryIO, reduce_to: tuple[int, int] | None = None,
             name: str | None = None) -> Image.Image:
    """Decode an image file to 8-bit RGB, honouring its EXIF orientation.

    ``path`` is a file name or an open binary file (``name`` then labels it in
    errors, e.g. ``"upload"``). ``reduce_to`` ``(width, height)``: the size the
    caller will resize to; a JPEG is then decoded reduced to about that size
    (see :func:`_reduce_on_load`), so the result may be smaller than the file.

    Raises :class:`ImageTooLarge` (before decoding anything) when the image has
    more than :data:`MAX_IMAGE_PIXELS` pixels, and :class:`DataError` naming
    the file when it is empty, truncated or not an image.
    """
    label: str | Path | None = name if name is not None else (
        Path(path) if isinstance(path, (str, Path)) else None)
    fp = Path(path) if isinstance(path, str) else path
    try:
        with Image.open(fp) as img:  # closes the file; the decoded picture stays usable
            return _decode(img, label, reduce_to, owned=True)
    except FileNotFoundError:
        raise DataError("file not found", label) from None
    except Image.DecompressionBombError as exc:
        raise _bomb(exc, label) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        empty = isinstance(fp, Path) and fp.exists() and fp.stat().st_size == 0
        if empty:
            reason = "empty file"
        elif isinstance(exc, UnidentifiedImageError):
            # Pillow's own text ends in the file object's repr ("<_io.BytesIO object at ...>").
            reason = "not a readable image (no image format recognised)"
        else:
            reason = f"not a readable image ({exc.__class__.__name__}: {exc})"
        raise DataError(reason, label) from None


def as_rgb_image(image: str | Path | Image.Image | np.ndarray,
                 reduce_to: tuple[int, int] | None = None) -> Image.Image:
    """Accept a file path, a PIL image or an HxWx3 / HxW uint8 array; return RGB PIL.

    A path or a not yet loaded PIL image is decoded here, under the pixel cap
    (:class:`ImageTooLarge`) and reduced to about ``reduce_to`` when it is a
    JPEG (see :func:`load_rgb`). An array is already in memory and is not capped.

    Raises:
        DataError: an array that is not ``H x W x 3`` or ``H x W``, or a file that cannot be
            decoded.
        ImageTooLarge: an image over :data:`MAX_IMAGE_PIXELS` (before decoding it).
    """
    if isinstance(image, (str, Path)):
        return load_rgb(image, reduce_to) if reduce_to is not None else load_rgb(image)
    if isinstance(image, Image.Image):
        # An opened file keeps its undecoded tiles until load(): draft and the cap still help.
        if isinstance(image, ImageFile.ImageFile) and image.tile:
            try:
                return _decode(image, image.filename or None, reduce_to)
            except Image.DecompressionBombError as exc:
                raise _bomb(exc, image.filename or None) from None
        _check_pixels(image.size, getattr(image, "filename", None) or None)
        return _to_rgb(ImageOps.exif_transpose(image) or image)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:  # H x W x 1 grey
        arr = arr[..., 0]
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
    """Return the model input for one image: ``uint8`` array ``height x width x channels``.

    Pass ``out`` (a preallocated uint8 array of that shape) to avoid allocating
    in a hot loop. A JPEG file is decoded reduced to about the model's size
    (Pillow's ``draft``) and then resized once; any file is refused with
    :class:`ImageTooLarge` beyond :data:`MAX_IMAGE_PIXELS`.
    """
    img = as_rgb_image(image, reduce_to=(spec.width, spec.height))
    return _pixels(_fit(img, spec), spec, out)


def _fit(img: Image.Image, spec: ImagePreprocessing) -> Image.Image:
    """Crop (``spec.crop``) and resize a decoded RGB picture to the model's size, once."""
    box = _center_crop_box(img.size, spec.height, spec.width) if spec.crop == "center" else None
    if img.size != (spec.width, spec.height) or box is not None:
        img = img.resize((spec.width, spec.height), _RESAMPLE[spec.resize], box=box)
    if spec.channels == 1:
        # After the RGB decode, so transparency is composited over white as for colour.
        img = img.convert("L")
    return img


def _pixels(img: Image.Image, spec: ImagePreprocessing, out: np.ndarray | None) -> np.ndarray:
    """The model-sized picture as ``uint8`` ``height x width x channels`` (into ``out``)."""
    pixels = np.asarray(img, dtype=np.uint8).reshape(spec.height, spec.width, spec.channels)
    if out is None:
        return pixels.copy()
    out[...] = pixels
    return out
