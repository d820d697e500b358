"""The pixel contract of an image model: what numbers it wants for an RGB image.

An image reaches a model as 8-bit pixels ``p`` in 0..255. What the model was
trained on differs: raw 0..255 (edgepose's own models rescale inside the graph),
``p / 255`` (0..1), ``p / 127.5 - 1`` (-1..1), or per-channel mean/std. The
contract follows TFLite Metadata's ``NormalizationOptions`` (and MediaPipe Model
Maker's ``mean_rgb``/``stddev_rgb``): the model input is ``(p - mean) / std``
per channel, with the channels in ``channel_order`` and the tensor in ``layout``.

Where a contract comes from, in order (:func:`resolve_contract`): the manifest,
the model's TFLite Metadata, the quantization parameters of an integer input (a
uint8 input with scale 1/255 and zero point 0 stands for 0..1, i.e. raw bytes),
the user (``--input-range``/``--input-mean``/``--input-std``/``--channel-order``);
a float image input that states nothing is refused: edgepose does not guess. A
user flag that disagrees with what the model states is refused in one line naming
both (:func:`apply_stated`), unless ``--override-contract`` says it is deliberate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edgepose.errors import ConfigError, ModelError

PIXELS, FEATURES = "pixels", "features"
LAYOUTS = ("NHWC", "NCHW")
CHANNEL_ORDERS = ("RGB", "BGR")
# Named value ranges a quantized input is matched against (lo, hi of the real values).
KNOWN_RANGES = {"0..255": (0.0, 255.0), "0..1": (0.0, 1.0), "-1..1": (-1.0, 1.0)}
# A quantized input's representable range must lie this close (fraction of the span)
# to a known range to count as unambiguous: 1/255 of slack for rounding, plus a margin.
_RANGE_TOLERANCE = 0.03

STATE_IT = ("state it with --input-range 0,255 | 0,1 | -1,1 "
            "(or --input-mean/--input-std per channel)")


@dataclass(frozen=True)
class InputContract:
    """How an 8-bit RGB image becomes the model's input tensor.

    ``kind`` is ``"pixels"`` for image models and ``"features"`` for keypoint or
    other vector models (passed through unchanged). For pixels the model input
    is ``(p - mean[c]) / std[c]`` for pixel ``p`` in 0..255 of channel ``c`` (one
    value applies to all channels), channels ordered ``channel_order``,
    tensor laid out ``layout`` (NHWC or NCHW). ``dtype`` is the input tensor's
    type (an integer tensor is then quantized with its own scale/zero point).
    ``source`` says where the contract was learned. ``channels`` is 3 (colour) or 1
    (greyscale: images are decoded to one luma channel, ``channel_order`` does not
    apply and mean/std take one value).
    """

    kind: str = PIXELS
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    channel_order: str = "RGB"
    layout: str = "NHWC"
    dtype: str = "float32"
    source: str = ""
    channels: int = 3

    def __post_init__(self) -> None:
        if self.kind not in (PIXELS, FEATURES):
            raise ConfigError(f"input contract kind must be pixels or features, not {self.kind!r}")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"input layout must be NHWC or NCHW, not {self.layout!r}")
        if self.channel_order not in CHANNEL_ORDERS:
            raise ConfigError(f"channel order must be RGB or BGR, not {self.channel_order!r}")
        if len(self.mean) not in (1, 3) or len(self.std) not in (1, 3):
            raise ConfigError("input mean/std take 1 value or 3 (one per channel)")
        if any(not np.isfinite(s) or s == 0 for s in self.std) or \
                any(not np.isfinite(m) for m in self.mean):
            raise ConfigError(f"input std must be finite and non-zero, got {list(self.std)}")
        if self.channels not in (1, 3):
            raise ConfigError(f"an image input has 1 or 3 channels, not {self.channels}")
        if self.channels == 1 and (len(self.mean) != 1 or len(self.std) != 1):
            raise ConfigError(f"a greyscale (1-channel) input takes one mean and one std, got "
                              f"mean {list(self.mean)}, std {list(self.std)}")

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def raw(cls, source: str = "", **kwargs: Any) -> InputContract:
        """Raw 0..255 pixels (what every model edgepose trains takes)."""
        return cls(PIXELS, (0.0,), (1.0,), source=source, **kwargs)

    @classmethod
    def features(cls, dtype: str = "float32", source: str = "") -> InputContract:
        """A vector model (keypoints): the input is passed as given."""
        return cls(FEATURES, dtype=dtype, source=source)

    @classmethod
    def from_range(cls, lo: float, hi: float, source: str = "", **kwargs: Any) -> InputContract:
        """Pixels 0..255 mapped linearly onto ``lo..hi`` (``--input-range lo,hi``).

        ``(p - mean) / std`` hits ``lo`` at 0 and ``hi`` at 255 for
        ``std = 255 / (hi - lo)`` and ``mean = -lo * std``.

        Raises:
            ConfigError: ``lo`` or ``hi`` is not finite, or ``lo >= hi``.
        """
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
            raise ConfigError(f"--input-range needs two finite numbers lo < hi, got {lo},{hi}")
        std = 255.0 / (hi - lo)
        return cls(PIXELS, (_clean(-lo * std),), (_clean(std),), source=source, **kwargs)

    def with_tensor(self, dtype: str, layout: str | None = None,
                    channels: int | None = None) -> InputContract:
        """The same normalisation for a tensor of ``dtype`` (and ``layout``, ``channels``).

        Raises ConfigError for a greyscale tensor given three different means/stds or BGR.
        """
        channels = channels or self.channels
        mean, std = self.mean, self.std
        if channels == 1 and self.kind == PIXELS:
            if self.channel_order == "BGR":
                raise ConfigError("a greyscale (1-channel) input has no channel order; drop "
                                  "--channel-order bgr")
            # Three equal values (TFLite metadata written per RGB channel) say one thing.
            if len(set(mean)) == 1 and len(set(std)) == 1:
                mean, std = mean[:1], std[:1]
        return replace(self, dtype=dtype, layout=layout or self.layout, channels=channels,
                       mean=mean, std=std)

    def as_stated(self) -> StatedContract:
        """This contract as if the user had stated it (to load a model without manifest)."""
        if self.kind == FEATURES:
            return StatedContract()
        return StatedContract(mean=self.mean, std=self.std, channel_order=self.channel_order)

    # -- what it means ---------------------------------------------------------------------

    @property
    def is_raw(self) -> bool:
        """Raw RGB 0..255 in NHWC: the input needs no arithmetic before quantization."""
        return (self.kind == FEATURES) or (
            all(m == 0 for m in self.mean) and all(s == 1 for s in self.std)
            and self.channel_order == "RGB" and self.layout == "NHWC")

    def channel_mean_std(self, channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """``mean`` and ``std`` as float32 arrays of ``channels`` values."""
        mean = np.broadcast_to(np.asarray(self.mean, np.float32), (channels,)).copy()
        std = np.broadcast_to(np.asarray(self.std, np.float32), (channels,)).copy()
        return mean, std

    @property
    def value_range(self) -> tuple[float, float] | None:
        """The real values pixels 0..255 become (lowest, highest over channels); None for
        features."""
        if self.kind == FEATURES:
            return None
        mean, std = self.channel_mean_std()
        ends = np.stack([(0.0 - mean) / std, (255.0 - mean) / std])
        return float(ends.min()), float(ends.max())

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels ``... x H x W x 3`` (RGB, 0..255) -> float32 model values in this contract's
        channel order, still channels-last (the layout is the device's concern)."""
        x = np.asarray(pixels, dtype=np.float32)
        if self.kind == FEATURES:
            return x
        mean, std = self.channel_mean_std(x.shape[-1])
        x = (x - mean) / std
        return x[..., ::-1] if self.channel_order == "BGR" else x

    def describe(self) -> str:
        """One line: what the model receives, computed from 0..255 pixels, e.g.
        ``input 0..1 = pixel / 255, RGB, NHWC, float32 (from the manifest)`` or
        ``input -1..1 = (pixel - 127.5) / 127.5, ...``."""
        where = f" (from {self.source})" if self.source else ""
        if self.kind == FEATURES:
            return f"features as given, {self.dtype}{where}"
        colour = "grey" if self.channels == 1 else self.channel_order
        return f"{self.describe_range()}, {colour}, {self.layout}, {self.dtype}{where}"

    def formula(self) -> str:
        """How the input is computed from a 0..255 pixel: ``pixel / 255``,
        ``(pixel - 127.5) / 127.5``, ``pixel`` (as decoded), or per channel
        ``(pixel - [123.7, 116.3, 103.5]) / [58.4, 57.1, 57.4]``."""
        def one(values: tuple[float, ...]) -> str:
            if len(set(values)) == 1:
                return _fmt(values[0])
            return "[" + ", ".join(_fmt(v) for v in values) + "]"

        term = "pixel" if not any(self.mean) else f"(pixel - {one(self.mean)})"
        if all(s == 1.0 for s in self.std):
            return term
        return f"{term} / {one(self.std)}"

    def describe_values(self) -> str:
        """The normalisation and order alone, e.g. ``input 0..1 = pixel / 255, RGB``."""
        return f"{self.describe_range()}, {self.channel_order}"

    def describe_range(self) -> str:
        """The input's range and how it comes from a pixel, e.g. ``input 0..1 = pixel / 255``."""
        lo, hi = self.value_range or (0.0, 255.0)
        return f"input {_fmt(lo)}..{_fmt(hi)} = {self.formula()}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the manifest's ``input_contract``); ``source`` is not stored.

        ``channels`` is written only for a greyscale input (absent means 3)."""
        data = {"kind": self.kind, "mean": list(self.mean), "std": list(self.std),
                "channel_order": self.channel_order, "layout": self.layout,
                "dtype": self.dtype, "value_range": list(self.value_range or []) or None}
        if self.channels != 3:
            data["channels"] = self.channels
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> InputContract:
        """Inverse of :meth:`to_dict`; ``value_range`` is derived, not read.

        Raises:
            ConfigError: a missing or malformed field.
        """
        try:
            return cls(str(data.get("kind", PIXELS)),
                       tuple(float(m) for m in data.get("mean", (0.0,))),
                       tuple(float(s) for s in data.get("std", (1.0,))),
                       str(data.get("channel_order", "RGB")), str(data.get("layout", "NHWC")),
                       str(data.get("dtype", "float32")), source,
                       int(data.get("channels", 3)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"malformed input_contract ({exc})") from None


@dataclass(frozen=True)
class StatedContract:
    """What a user stated on the command line (any field may be missing)."""

    input_range: tuple[float, float] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channel_order: str | None = None
    notes: list[str] = field(default_factory=list)
    # --override-contract: the user knows the model states otherwise and means it.
    override: bool = False

    @property
    def normalization_given(self) -> bool:
        return self.input_range is not None or self.mean is not None or self.std is not None

    @property
    def given(self) -> bool:
        """Any contract flag at all."""
        return self.normalization_given or self.channel_order is not None

    def flags(self) -> str:
        """The flags as typed, e.g. ``--input-range 0,1 --channel-order bgr``."""
        parts = []
        if self.input_range is not None:
            parts.append(f"--input-range {_fmt(self.input_range[0])},{_fmt(self.input_range[1])}")
        if self.mean is not None:
            parts.append(f"--input-mean {','.join(_fmt(m) for m in self.mean)}")
        if self.std is not None:
            parts.append(f"--input-std {','.join(_fmt(s) for s in self.std)}")
        if self.channel_order is not None:
            parts.append(f"--channel-order {self.channel_order.lower()}")
        return " ".join(parts)

    def apply(self, base: InputContract | None = None) -> InputContract | None:
        """The stated contract (on top of ``base`` for what was not stated), or None.

        Raises:
            ConfigError: ``--channel-order`` alone (no pixel range), or both ``--input-range`` and
                ``--input-mean/--input-std``.
        """
        if not self.normalization_given and self.channel_order is None:
            return base
        if self.input_range is not None and (self.mean is not None or self.std is not None):
            raise ConfigError("give --input-range or --input-mean/--input-std, not both")
        # What is not stated comes from ``base``: a range typed for a BGR model stays BGR.
        order = ({"channel_order": self.channel_order.upper()} if self.channel_order else
                 {"channel_order": base.channel_order} if base is not None else {})
        if self.input_range is not None:
            return InputContract.from_range(*self.input_range, source="--input-range", **order)
        if self.mean is not None or self.std is not None:
            return InputContract(PIXELS, self.mean or (0.0,), self.std or (1.0,),
                                 source="--input-mean/--input-std", **order)
        if base is None:
            raise ConfigError(f"--channel-order alone does not say the pixel range; {STATE_IT}")
        return replace(base, source=f"{base.source}, --channel-order", **order)


def parse_floats(text: str | None, option: str, count: Sequence[int] = (1, 3)
                 ) -> tuple[float, ...] | None:
    """``"0,1"`` -> ``(0.0, 1.0)``; a wrong count or a non-number raises ConfigError.

    Raises:
        ConfigError: not ``wanted`` comma-separated numbers (the message names ``option``).
    """
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in str(text).replace(" ", "").split(","))
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated numbers, got {text!r}") from None
    if len(values) not in count:
        wanted = " or ".join(str(c) for c in count)
        raise ConfigError(f"{option} takes {wanted} comma-separated numbers, got {text!r}")
    return values


def stated_contract(input_range: str | None = None, input_mean: str | None = None,
                    input_std: str | None = None, channel_order: str | None = None,
                    override: bool = False) -> StatedContract:
    """The CLI's contract flags parsed into a :class:`StatedContract`.

    Raises:
        ConfigError: ``override`` (``--override-contract``) without any contract flag (there is
            nothing to override with), or a flag value that is not a list of numbers.
    """
    rng = parse_floats(input_range, "--input-range", (2,))
    stated = StatedContract(input_range=(rng[0], rng[1]) if rng else None,
                            mean=parse_floats(input_mean, "--input-mean"),
                            std=parse_floats(input_std, "--input-std"),
                            channel_order=channel_order, override=override)
    if override and not stated.given:
        raise ConfigError("--override-contract needs the contract to use: --input-range, "
                          "--input-mean/--input-std or --channel-order")
    return stated


# Two normalisations agree when the values pixels 0 and 255 become, per channel, match to
# 1% of the span: mean/std 128/128 and 127.5/127.5 (both "-1..1", two rounding habits)
# agree, 0..1 and 0..255 or -1..1 do not.
_AGREE_RTOL = 0.01


def _same_normalization(a: InputContract, b: InputContract) -> bool:
    mean_a, std_a = a.channel_mean_std()
    mean_b, std_b = b.channel_mean_std()
    # Compare the real values of the pixel ends: a mean of 0 has no relative scale.
    ends_a = np.stack([(0.0 - mean_a) / std_a, (255.0 - mean_a) / std_a])
    ends_b = np.stack([(0.0 - mean_b) / std_b, (255.0 - mean_b) / std_b])
    span = max(float(np.ptp(ends_a)), float(np.ptp(ends_b)), 1e-12)
    return bool(np.all(np.abs(ends_a - ends_b) <= _AGREE_RTOL * span))


def apply_stated(stated: StatedContract | None, base: InputContract | None,
                 states_order: bool, model_path=None) -> InputContract | None:
    """The contract to use when the user stated ``stated`` and the model states ``base``.

    ``states_order``: ``base`` says its channel order (an edgepose manifest does; TFLite
    metadata and input quantization do not, so there ``--channel-order`` is taken as
    the user's word). A flag that agrees with ``base`` is fine (``base`` is used, its
    source naming the flag); one that disagrees raises :class:`ModelError` naming
    both, unless ``stated.override`` (``--override-contract``): then the flags win and
    ``source`` says what they override. Never silently: a wrong range scores every
    image confidently wrong.

    Raises:
        ModelError: a stated flag disagrees with ``base`` and ``stated.override`` is off.
    """
    if stated is None or not stated.given:
        return base
    wanted = stated.apply(base)
    if base is None or wanted is None:
        return wanted
    clashes = []
    if stated.normalization_given and not _same_normalization(wanted, base):
        clashes.append(f"{wanted.describe_range()} vs {base.describe_range()}")
    if stated.channel_order is not None and states_order \
            and wanted.channel_order != base.channel_order:
        clashes.append(f"{wanted.channel_order} vs {base.channel_order}")
    if not clashes:  # the model's values; the order is the user's where the model says none
        return replace(base, channel_order=wanted.channel_order,
                       source=f"{base.source}, agreeing with {stated.flags()}")
    if stated.override:
        return replace(wanted, source=f"{stated.flags()} (--override-contract; the model "
                                      f"states {base.describe_values()} in {base.source})")
    raise ModelError(f"{stated.flags()} disagrees with {base.source} ({'; '.join(clashes)}); "
                     "drop the flag, or add --override-contract to use it anyway", model_path)


def image_layout(shape: Sequence[int]) -> str | None:
    """``"NHWC"`` or ``"NCHW"`` for a 4-D image input with 3 (RGB) or 1 (grey) channels,
    else None.

    NHWC when dimension 3 is 3 or 1; NCHW when dimension 1 is 3 or 1 and dimension 3
    is not (a 1- or 3-pixel-wide image is not a thing).
    """
    if len(shape) != 4:
        return None
    if shape[3] in (1, 3):
        return "NHWC"
    if shape[1] in (1, 3):
        return "NCHW"
    return None


def image_channels(shape: Sequence[int], layout: str | None) -> int:
    """Channels of a 4-D image input laid out ``layout`` (3 when not an image)."""
    if layout == "NHWC":
        return int(shape[3])
    if layout == "NCHW":
        return int(shape[1])
    return 3


def contract_from_quantization(scale: float, zero_point: int, dtype: str,
                               layout: str = "NHWC") -> InputContract | None:
    """The contract an integer image input's quantization states, when unambiguous.

    The representable real range ``scale * (qmin - zp) .. scale * (qmax - zp)`` is
    what calibration saw; it is matched to 0..255, 0..1 or -1..1 within 3% of the
    span. E.g. uint8 scale 1/255 zp 0 -> 0..1 (the model takes raw bytes); int8
    scale 1/255 zp -128 -> 0..1; uint8 scale 1 zp 0 -> 0..255. Anything else -> None.
    """
    info = np.iinfo(np.dtype(dtype))
    lo, hi = scale * (info.min - zero_point), scale * (info.max - zero_point)
    for name, (want_lo, want_hi) in KNOWN_RANGES.items():
        span = want_hi - want_lo
        if abs(lo - want_lo) <= _RANGE_TOLERANCE * span and \
                abs(hi - want_hi) <= _RANGE_TOLERANCE * span:
            return InputContract.from_range(
                want_lo, want_hi, layout=layout, dtype=dtype,
                source=f"{dtype} input quantization (scale {scale:.6g}, zero point "
                       f"{zero_point} -> {name})")
    return None


def _clean(value: float) -> float:
    """Round float noise away so 255/1 prints as 255.0, not 254.99999999999997."""
    return float(round(value, 9)) + 0.0  # + 0.0 turns -0.0 into 0.0


def _fmt(value: float) -> str:
    return f"{value:g}"


def refuse_unstated(shape: Sequence[int], dtype: str, path) -> ModelError:
    """The one-line error for a float image model that states no contract."""
    return ModelError(f"{dtype} image input {list(shape)} with no stated pixel range (no "
                      "edgepose manifest, no TFLite metadata): edgepose cannot tell 0..255 from "
                      f"0..1 or -1..1; {STATE_IT}", path)


class PixelWriter:
    """Write one sample into an input tensor's buffer through the contract.

    Raw RGB NHWC (and features) go through :class:`InputQuantizer` unchanged
    (its uint8 fast paths). Otherwise a uint8 image goes through one 256-entry
    table per tensor channel, ``quantize((p - mean[c]) / std[c])`` computed once,
    so normalising, reordering to BGR, transposing to NCHW and quantizing cost
    one lookup per value; a float image (pixels as floats) is normalised, then
    quantized like any real value.
    """

    def __init__(self, detail: dict, contract: InputContract, tensor_shape: tuple[int, ...]):
        from edgepose.runtime.quantization import InputQuantizer, quantize

        self.contract = contract
        self.detail = detail
        self._direct = contract.kind == FEATURES or contract.is_raw
        sample = tuple(tensor_shape[1:])
        self._quantizer = InputQuantizer(detail, sample) if self._direct else None
        if self._direct:
            return
        channels = contract.channels
        mean, std = contract.channel_mean_std(channels)
        # tensor channel c reads source (RGB, or the one grey) channel _source[c]
        self._source = ([0] if channels == 1 else
                        [2, 1, 0] if contract.channel_order == "BGR" else [0, 1, 2])
        pixels = np.arange(256, dtype=np.float32)
        self._tables = [quantize((pixels - mean[s]) / std[s], detail) for s in self._source]
        height, width = (sample[1], sample[2]) if contract.layout == "NCHW" else sample[:2]
        self._scratch = np.empty((height, width), dtype=np.dtype(detail["dtype"]))

    def _channels_last(self, out: np.ndarray) -> np.ndarray:
        return out.transpose(1, 2, 0) if self.contract.layout == "NCHW" else out

    def __call__(self, pixels: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``pixels`` (H x W x 3 RGB, H x W x 1 grey, or a feature sample) -> ``out`` (one
        tensor sample)."""
        from edgepose.runtime.quantization import quantize

        if self._direct:
            return self._quantizer(pixels, out)
        view = self._channels_last(out)
        if pixels.dtype == np.uint8:
            for c, source in enumerate(self._source):
                np.take(self._tables[c], pixels[..., source], out=self._scratch)
                view[..., c] = self._scratch
            return out
        values = self.contract.normalize(pixels)  # reorders channels too
        view[...] = quantize(values, self.detail)
        return out
