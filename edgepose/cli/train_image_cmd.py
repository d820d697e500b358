"""`edgepose train image DATA/`: transfer-learn an image classifier into models/<run>/."""

from __future__ import annotations

import click

from edgepose.cli.common import console, parse_int_list, print_json
from edgepose.cli.eval_cmd import print_evaluation

# Kept in step with edgepose.train.model_spec.BACKBONES (imported lazily: no TF for --help).
BACKBONE_HELP = "mobilenet_v2 | mobilenet_v3_small | mobilenet_v3_large | efficientnet_b0"


@click.command()
@click.argument("data", type=click.Path(path_type=str))
@click.option("--backbone", default="mobilenet_v2", show_default=True, help=BACKBONE_HELP)
@click.option("--input-size", type=int, default=None,
              help="Square input size in pixels [default: the backbone's, 224].")
@click.option("--alpha", type=float, default=None, help="Width multiplier [default: 1.0].")
@click.option("--weights", default="imagenet", show_default=True,
              help="imagenet | none | PATH to a .weights.h5, .h5 or .keras file.")
@click.option("--head", default="", help="Hidden Dense layers before the softmax, e.g. 256,256.")
@click.option("--dropout", default=0.2, show_default=True, type=float)
@click.option("--batchnorm", is_flag=True, help="BatchNormalization after each head layer.")
@click.option("--augment", default="light", show_default=True,
              type=click.Choice(["none", "light", "medium", "strong", "shift"]),
              help="In-graph augmentation preset (training only, not exported).")
@click.option("--epochs", default=10, show_default=True, type=int,
              help="Epochs of stage 1 (frozen backbone).")
@click.option("--batch-size", default=32, show_default=True, type=int)
@click.option("--lr", default=1e-3, show_default=True, type=float)
@click.option("--lr-schedule", default="constant", show_default=True,
              type=click.Choice(["constant", "cosine"]),
              help="cosine: decay --lr to 0 over each stage's epochs.")
@click.option("--fine-tune-epochs", default=0, show_default=True, type=int,
              help="Epochs of stage 2 (part of the backbone unfrozen).")
@click.option("--fine-tune-lr", default=1e-5, show_default=True, type=float)
@click.option("--unfreeze-top", type=int, default=None,
              help="Stage 2 trains the top N backbone layers [default: all].")
@click.option("--freeze-until", type=int, default=None,
              help="Stage 2 trains backbone layers from index K on.")
@click.option("--patience", default=5, show_default=True, type=int,
              help="EarlyStopping patience in epochs (0: off).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--strategy", default="default", show_default=True,
              type=click.Choice(["default", "mirrored"]),
              help="mirrored: tf.distribute.MirroredStrategy over all GPUs.")
@click.option("--deterministic/--no-deterministic", default=True, show_default=True,
              help="TensorFlow op determinism.")
@click.option("--val-split", default=0.15, show_default=True, type=float)
@click.option("--test-split", default=0.15, show_default=True, type=float)
@click.option("--strict", is_flag=True,
              help="Fail on any unreadable image instead of skipping, and exit 3 when the "
                   "val/test accuracy is at chance or one class is predicted.")
@click.option("--dedupe", is_flag=True, help="Move near-duplicate val/test images to train.")
@click.option("--class-weight", default="auto", show_default=True,
              type=click.Choice(["auto", "none"]))
@click.option("--output", "-o", default=None,
              help="Run directory [default: models/<dataset>-<backbone>-<timestamp>].")
@click.option("--overwrite", is_flag=True, help="Reuse a non-empty --output directory.")
@click.option("--quiet", "-q", is_flag=True,
              help="No progress while training (the data summary is printed at the end).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def image(data: str, backbone: str, input_size: int | None, alpha: float | None, weights: str,
          head: str, dropout: float, batchnorm: bool, augment: str, epochs: int,
          batch_size: int, lr: float, lr_schedule: str, fine_tune_epochs: int, fine_tune_lr: float,
          unfreeze_top: int | None, freeze_until: int | None, patience: int, seed: int,
          strategy: str, deterministic: bool, val_split: float, test_split: float,
          strict: bool, dedupe: bool, class_weight: str, output: str | None, overwrite: bool,
          quiet: bool, as_json: bool) -> None:
    """Transfer-learn an image classifier on DATA/<class>/<images>.

    Writes model.keras (raw RGB 0..255 in, probabilities out), labels.txt,
    splits.json, config.json, history.csv, metrics.json and plots to the run directory.
    """
    from edgepose.train.hyperparameters import (
        DataParams,
        ImageModelParams,
        ImageTrainOptions,
        TrainingParams,
    )
    from edgepose.train.image_classifier import train_image_classifier
    from edgepose.train.progress import TrainProgress

    options = ImageTrainOptions(
        model=ImageModelParams(backbone=backbone, input_size=input_size, alpha=alpha,
                               weights=weights, head=parse_int_list(head), dropout=dropout,
                               batchnorm=batchnorm, augment=augment),
        data=DataParams(val_split=val_split, test_split=test_split, strict=strict,
                        dedupe=dedupe, class_weight=class_weight),
        training=TrainingParams(epochs=epochs, batch_size=batch_size, lr=lr,
                                lr_schedule=lr_schedule, seed=seed,
                                patience=patience, fine_tune_epochs=fine_tune_epochs,
                                fine_tune_lr=fine_tune_lr, unfreeze_top=unfreeze_top,
                                freeze_until=freeze_until, strategy=strategy,
                                deterministic=deterministic,
                                verbose=0),
        output=output, overwrite=overwrite)
    # Progress: the data summary first, then each epoch (stdout keeps stderr for the
    # one-line error; --json and --quiet print nothing until the end).
    progress = None if quiet or as_json else TrainProgress(console)
    result = train_image_classifier(data, options, progress=progress)
    if as_json:
        print_json(result)
        return
    if quiet:
        console.print(result.data_summary)
    console.print(f"{result.backbone} @ {result.input_size}px, {result.weights}; "
                  f"{result.epochs} epochs in {result.seconds:.1f} s "
                  f"({result.images_per_second:.0f} images/s training, "
                  "without validation and graph tracing)")
    print_evaluation(result.metrics, result.run_dir)
    console.print(f"run directory: {result.run_dir}")
