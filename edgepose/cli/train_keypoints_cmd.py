"""`edgepose train keypoints DATA/`: train a pose-keypoint MLP into models/<run>/."""

from __future__ import annotations

import click

from edgepose.cli.common import console, parse_int_list, print_json
from edgepose.cli.eval_cmd import print_evaluation


@click.command()
@click.argument("data", type=click.Path(path_type=str))
@click.option("--layout", default="coco17", show_default=True,
              type=click.Choice(["coco17", "mediapipe33", "body14"]),
              help="Keypoint layout of the files.")
@click.option("--category", default=None,
              help="Train on one category folder (e.g. stance) [default: all categories].")
@click.option("--hidden", default="256,128", show_default=True,
              help="Dense -> BatchNorm -> ReLU6 -> Dropout blocks, e.g. 256,128.")
@click.option("--dropout", default=0.3, show_default=True, type=float)
@click.option("--normalization", default="body", show_default=True,
              type=click.Choice(["body", "zscore", "none"]),
              help="In-graph: body-centred (hips, torso size) or per-sample z-score.")
@click.option("--mirror/--no-mirror", default=True, show_default=True,
              help="Left/right mirror augmentation (training only).")
@click.option("--rotation", default=5.0, show_default=True, type=float,
              help="Random rotation augmentation, +- degrees (0: off).")
@click.option("--scale", default=0.1, show_default=True, type=float,
              help="Random scale augmentation, 1 +- this (0: off).")
@click.option("--jitter", default=0.005, show_default=True, type=float,
              help="Per-joint Gaussian jitter, image-normalised units (0: off).")
@click.option("--unit", default=None, type=click.FloatRange(min=0, min_open=True),
              help="One coordinate unit in the files' units: 1 for x, y in 0..1, e.g. 640 "
                   "for pixels [default: from the training data: 1 when every |x|, |y| <= 2, "
                   "else the next power of two of the largest].")
@click.option("--epochs", default=100, show_default=True, type=int)
@click.option("--batch-size", default=32, show_default=True, type=int)
@click.option("--lr", default=1e-3, show_default=True, type=float)
@click.option("--patience", default=20, show_default=True, type=int,
              help="EarlyStopping patience in epochs (0: off).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--deterministic/--no-deterministic", default=True, show_default=True)
@click.option("--val-split", default=0.15, show_default=True, type=float)
@click.option("--test-split", default=0.15, show_default=True, type=float)
@click.option("--strict", is_flag=True,
              help="Fail on any broken file or label disagreement instead of reporting it.")
@click.option("--class-weight", default="auto", show_default=True,
              type=click.Choice(["auto", "none"]))
@click.option("--output", "-o", default=None,
              help="Run directory [default: models/<dataset>-keypoints-<layout>-<timestamp>].")
@click.option("--overwrite", is_flag=True, help="Reuse a non-empty --output directory.")
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch progress.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def keypoints(data: str, layout: str, category: str | None, hidden: str, dropout: float,
              normalization: str, mirror: bool, rotation: float, scale: float, jitter: float,
              unit: float | None, epochs: int, batch_size: int, lr: float, patience: int, seed: int,
              deterministic: bool, val_split: float, test_split: float, strict: bool,
              class_weight: str, output: str | None, overwrite: bool, quiet: bool,
              as_json: bool) -> None:
    """Train a keypoint classifier on DATA/<category>/<class>/*.json (or CSV).

    Writes model.keras (raw keypoint vector in, probabilities out, normalisation
    inside), labels.txt, splits.json, config.json, history.csv, metrics.json and
    plots to the run directory.
    """
    from edgepose.train.hyperparameters import DataParams, TrainingParams
    from edgepose.train.keypoint_classifier import (
        KeypointModelParams,
        KeypointTrainOptions,
        train_keypoint_classifier,
    )

    options = KeypointTrainOptions(
        model=KeypointModelParams(layout=layout, hidden=parse_int_list(hidden), dropout=dropout,
                                  normalization=normalization, mirror=mirror,
                                  rotation=rotation, scale=scale, jitter=jitter, unit=unit),
        data=DataParams(val_split=val_split, test_split=test_split, strict=strict,
                        class_weight=class_weight),
        training=TrainingParams(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                patience=patience, deterministic=deterministic,
                                verbose=0 if quiet or as_json else 2),
        category=category, output=output, overwrite=overwrite)
    result = train_keypoint_classifier(data, options)
    if as_json:
        print_json(result)
        return
    for problem in result.problems:
        console.print(f"[yellow]warning[/yellow]: {problem}", markup=True, highlight=False)
    console.print(f"{result.layout} keypoints, classes {', '.join(result.classes)}; "
                  f"splits {result.split_sizes}; {result.parameters} parameters; "
                  f"{result.epochs} epochs in {result.seconds:.1f} s")
    print_evaluation(result.metrics, result.run_dir)
    console.print(f"run directory: {result.run_dir}")
