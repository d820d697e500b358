"""The knobs of a training run, as dataclasses with defaults.

:class:`TrainingParams` and :class:`DataParams` are shared by the image and the
keypoint trainers; :class:`ImageModelParams` is the image model only. Together
they are written to ``config.json`` so a run can be reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgepose.errors import ConfigError

# "shift" is "medium" without the mirror and the contrast change: small rotations,
# zooms and translations only, the standard distortions for handwritten symbols
# (Simard, Steinkraus & Platt 2003, "Best practices for convolutional neural networks
# applied to visual document analysis"), where a mirrored image is another symbol.
AUGMENT_PRESETS = ("none", "light", "medium", "strong", "shift")
STRATEGIES = ("default", "mirrored")
# "constant": every step at ``lr``. "cosine": ``lr`` decayed along half a cosine to 0 over
# each stage's epochs (Loshchilov & Hutter 2017, "SGDR", without restarts; Keras
# ``optimizers.schedules.CosineDecay``). A network trained from scratch needs large steps
# early and small ones late; the constant rate is kept as the default so existing runs
# reproduce, and because a schedule that ends at 0 makes EarlyStopping's patience moot.
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class TrainingParams:
    """How to fit: epochs, batches, learning rates, stopping, seed, devices.

    For training from scratch (``weights="none"``) the defaults (10 epochs, constant rate)
    are short: benchmarks/scratch_baselines.py trains 20 epochs with ``lr_schedule="cosine"``
    and the ``"shift"`` augmentation; with those, every backbone it records has a higher
    pooled accuracy than logistic regression and k-NN on the bundled digits (5-fold
    cross-validation; see its .md for which wins the paired test calls significant).
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    lr_schedule: str = "constant"  # constant | cosine (see LR_SCHEDULES)
    seed: int = 0
    patience: int = 5  # EarlyStopping on val_loss; 0 disables it
    fine_tune_epochs: int = 0  # stage 2 (needs pretrained weights); 0: no stage 2
    fine_tune_lr: float = 1e-5
    unfreeze_top: int | None = None  # stage 2: unfreeze the top N backbone layers ...
    freeze_until: int | None = None  # ... or every layer from index K (default: all)
    strategy: str = "default"
    deterministic: bool = True  # tf op determinism (cheap on CPU)
    verbose: int = 1  # Keras progress: 0 silent, 1 bar, 2 one line per epoch

    def validate(self) -> None:
        """Check the training knobs before any work.

        Raises:
            ConfigError: one line naming the option: a count under 1, a non-positive rate, negative
                fine-tune epochs, both or negative freeze options, or an unknown strategy.
        """
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.fine_tune_epochs < 0:
            raise ConfigError("--fine-tune-epochs must be >= 0")
        for name in ("lr", "fine_tune_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0")
        if self.unfreeze_top is not None and self.freeze_until is not None:
            raise ConfigError("give either --unfreeze-top or --freeze-until, not both")
        if (self.unfreeze_top or 0) < 0 or (self.freeze_until or 0) < 0:
            raise ConfigError("--unfreeze-top and --freeze-until must be >= 0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}")


@dataclass
class DataParams:
    """How the dataset folder becomes splits (passed to the data layer)."""

    val_split: float = 0.15
    test_split: float = 0.15
    strict: bool = False
    dedupe: bool = False
    class_weight: str = "auto"  # auto | none

    @property
    def fractions(self) -> tuple[float, float, float]:
        return (1.0 - self.val_split - self.test_split, self.val_split, self.test_split)

    def validate(self) -> None:
        """Check the split fractions and class weighting.

        Raises:
            ConfigError: split fractions out of range, or an unknown class-weight setting.
        """
        if not (0 <= self.val_split < 1 and 0 <= self.test_split < 1
                and self.val_split + self.test_split < 1):
            raise ConfigError("--val-split and --test-split must be >= 0 and sum to less than 1")
        if self.class_weight not in ("auto", "none"):
            raise ConfigError("--class-weight must be 'auto' or 'none'")


@dataclass
class ImageModelParams:
    """The image model: backbone, input size, weights, head and augmentation."""

    backbone: str = "mobilenet_v2"
    input_size: int | None = None  # None: the backbone's default size
    alpha: float | None = None  # None: the backbone's default width
    weights: str = "imagenet"  # imagenet | none | PATH (.weights.h5, .h5, .keras)
    head: list[int] = field(default_factory=list)  # hidden Dense units, e.g. [256, 256]
    dropout: float = 0.2
    batchnorm: bool = False
    augment: str = "light"

    def validate(self) -> None:
        """Check the image model head and augmentation.

        Raises:
            ConfigError: dropout outside [0, 1), non-positive head units, or an unknown augment
                preset.
        """
        if not 0 <= self.dropout < 1:
            raise ConfigError("--dropout must be in [0, 1)")
        if any(units < 1 for units in self.head):
            raise ConfigError("--head units must be positive integers")
        if self.augment not in AUGMENT_PRESETS:
            raise ConfigError(f"--augment must be one of {', '.join(AUGMENT_PRESETS)}")

    @property
    def pretrained(self) -> bool:
        return self.weights.lower() != "none"


@dataclass
class ImageTrainOptions:
    """Everything ``edgepose train image`` needs besides the dataset folder."""

    model: ImageModelParams = field(default_factory=ImageModelParams)
    data: DataParams = field(default_factory=DataParams)
    training: TrainingParams = field(default_factory=TrainingParams)
    output: str | None = None  # run directory; default models/<dataset>-<backbone>-<time>
    overwrite: bool = False

    def validate(self) -> None:
        """Check every part of the image training options.

        Raises:
            ConfigError: ``--fine-tune-epochs`` without pretrained weights, or any part invalid.
        """
        self.model.validate()
        self.data.validate()
        self.training.validate()
        if self.training.fine_tune_epochs and not self.model.pretrained:
            raise ConfigError("--fine-tune-epochs needs pretrained --weights (imagenet or PATH); "
                              "with --weights none the whole backbone trains from the start")
