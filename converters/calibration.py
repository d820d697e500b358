"""Representative data for calibrated modes: never the test split.

By default a class-stratified, seeded sample of the run's TRAIN split, loaded
exactly as the device loads inputs (:func:`edgepose.rundir.load_inputs`).
``--calib-data`` points at other data instead: a folder of images (flat or
class folders), a folder of keypoint JSON files, or a ``.npy`` array of values
the model takes as they are (already in its input contract, e.g. 0..1).
Images are mapped through the model's input contract; every set is checked
against it (:meth:`CalibrationSet.check_values`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.data.splits import Sample, Splits
from edgepose.errors import ConversionError, DataError
from edgepose.rundir import load_inputs
from edgepose.runtime.input_contract import InputContract
from edgepose.runtime.preprocess import IMAGE_SUFFIXES, ImagePreprocessing, image_to_array
from edgepose.sampling import SampleChoice, stratified_indices, take


@dataclass
class CalibrationSet:
    """Model inputs used to calibrate activation ranges, and where they came from."""

    x: np.ndarray  # N x <model input shape without batch>
    source: str  # "train split of <run>" or the folder given
    paths: list[str] = field(default_factory=list)
    # "pixels": RGB 0..255 images, to be mapped through the input contract
    # (:meth:`to_model_values`); "model": values the model takes as they are (.npy, keypoints).
    domain: str = "model"
    choice: SampleChoice | None = None  # which samples of how many were taken

    @property
    def description(self) -> str:
        """How many samples of how many, how drawn, from where (for reports)."""
        return self.choice.describe() if self.choice else f"{len(self)} samples from {self.source}"

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def representative_dataset(self, limit: int | None = None):
        """A callable for ``TFLiteConverter.representative_dataset`` (batches of one)."""
        x = self.x[:limit] if limit else self.x

        def generate():
            for i in range(x.shape[0]):
                yield [x[i:i + 1].astype(np.float32)]

        return generate

    def check_shape(self, input_shape: tuple[int, ...], model_path: str | Path) -> None:
        """Raise ConversionError when the samples do not fit the model's input.

        Raises:
            ConversionError: the samples' shape (without the batch axis) is not the model's input
                shape.
        """
        if tuple(self.x.shape[1:]) != tuple(input_shape):
            raise ConversionError(
                f"calibration data from {self.source} has sample shape {tuple(self.x.shape[1:])}"
                f" but the model expects {tuple(input_shape)}", model_path)


    def to_model_values(self, contract: InputContract) -> CalibrationSet:
        """Pixels mapped through ``contract`` (float32); model values are left as they are."""
        if self.domain != "pixels":
            return self
        return CalibrationSet(contract.normalize(self.x), self.source, self.paths, "model",
                              self.choice)

    def check_values(self, contract: InputContract, path: str | Path) -> None:
        """Refuse NaN/inf, and values far from the contract's range (e.g. 0..1 data for a
        0..255 model), naming ``path`` (the data) and both ranges.

        "Far" means the data reaches more than 10% of the contract's span beyond it, or
        spans less than 2% of it (0..1 in a 0..255 contract spans 0.4%): int8 ranges
        calibrated on such data clip or waste almost every quantization level.

        Raises:
            ConversionError: NaN/inf values, or values far from the contract's range (as above); the
                message names ``path`` and both ranges.
        """
        x = np.asarray(self.x)
        if np.issubdtype(x.dtype, np.floating):
            bad = ~np.isfinite(x)
            if bad.any():
                first = int(np.argwhere(bad.reshape(len(x), -1).any(axis=1))[0, 0])
                raise ConversionError(f"calibration data has {int(bad.sum())} NaN/inf values "
                                      f"(first in sample {first}); int8 ranges would be "
                                      "meaningless", path)
        expected = contract.value_range
        if expected is None or x.size == 0:
            return
        lo, hi = expected
        span = hi - lo
        low, high = float(x.min()), float(x.max())
        if low < lo - 0.1 * span or high > hi + 0.1 * span or (high - low) < 0.02 * span:
            raise ConversionError(
                f"calibration data spans {low:.4g}..{high:.4g} but the model's input contract "
                f"is {lo:.4g}..{hi:.4g} ({contract.describe()}); give data in the contract's "
                "range, or state the contract with --input-range / --input-mean/--input-std",
                path)


def stratified_sample(samples: list[Sample], n: int, seed: int = 0) -> list[Sample]:
    """Up to ``n`` samples, every class in proportion, seeded (:mod:`edgepose.sampling`)."""
    return take(samples, stratified_indices([s.label for s in samples], n, seed))


def from_run(splits: Splits, config: dict[str, Any], n: int = 200, seed: int = 0
             ) -> CalibrationSet:
    """A stratified sample of the TRAIN split, preprocessed as on the device.

    Raises:
        DataError: the run's train split is empty (the message says to pass --calib-data), or a
            sample cannot be read.
    """
    train = splits.samples("train")
    if not train:
        raise DataError("the run's train split is empty; pass --calib-data",
                        Path(splits.root))
    source = f"train split of {splits.root}"
    choice = stratified_indices([s.label for s in train], n, seed, source)
    chosen = take(train, choice)
    x, _ = load_inputs(splits, chosen, config)
    return CalibrationSet(x, source, [s.path for s in chosen],
                          "pixels" if config["task"] == "image" else "model", choice)


def from_folder(folder: str | Path, config: dict[str, Any], n: int = 200, seed: int = 0
                ) -> CalibrationSet:
    """Calibration samples from a folder (images or keypoint JSON, flat or in class folders)
    or a ``.npy`` array of model inputs.

    Raises:
        DataError: ``folder`` is neither a folder nor a ``.npy`` file; a folder without images or
            keypoint files (or whose keypoint files hold no person); a ``.npy`` that cannot be read,
            is not numeric or is not an ``N x ...`` array.
    """
    folder = Path(folder)
    if folder.is_file() and folder.suffix == ".npy":
        try:
            x = np.load(folder, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"not a readable .npy array ({exc})", folder) from None
        if x.ndim < 2 or x.shape[0] == 0:
            raise DataError(f"expected an N x ... array of samples, got shape {x.shape}", folder)
        if not np.issubdtype(x.dtype, np.number):
            raise DataError(f"expected a numeric array, got dtype {x.dtype}", folder)
        choice = stratified_indices([0] * x.shape[0], n, seed, str(folder))
        return CalibrationSet(x[choice.indices], str(folder),
                              [str(i) for i in choice.indices], "model", choice)
    if not folder.is_dir():
        raise DataError("calibration data not found (expected a folder or a .npy file)", folder)
    task = config["task"]
    suffixes = IMAGE_SUFFIXES if task == "image" else (".json",)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        kind = "images" if task == "image" else "keypoint .json files"
        raise DataError(f"no {kind} in the calibration folder", folder)
    # Class folders (or the flat folder, as one class) keep their proportions.
    choice = stratified_indices([p.relative_to(folder).parent.as_posix() for p in files], n,
                                seed, str(folder))
    files = take(files, choice)
    if task == "image":
        spec = ImagePreprocessing.from_dict(config["preprocessing"])
        x = np.zeros((len(files), spec.height, spec.width, 3), dtype=np.uint8)
        for i, path in enumerate(files):
            image_to_array(path, spec, out=x[i])
    else:
        from edgepose.runtime.keypoint_file import load_keypoint_vector
        from edgepose.runtime.layouts import get_layout
        from edgepose.runtime.presence import no_person_reason

        # "No person" vectors (all zero, NaN, too few joints) are never classified, so
        # they must not stretch the int8 ranges either; training leaves them out too.
        layout = get_layout(config["keypoint_layout"])
        vectors = [load_keypoint_vector(p, layout, allow_missing=True) for p in files]
        keep = [i for i, v in enumerate(vectors) if no_person_reason(v, layout) is None]
        if not keep:
            raise DataError(f"all {len(files)} keypoint files hold no person (e.g. "
                            f"{files[0].name}: {no_person_reason(vectors[0], layout)})", folder)
        files = [files[i] for i in keep]
        x = np.stack([vectors[i] for i in keep])
    return CalibrationSet(x, str(folder), [str(p.relative_to(folder)) for p in files],
                          "pixels" if task == "image" else "model", choice)
