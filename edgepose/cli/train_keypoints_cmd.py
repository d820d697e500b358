"""`edgepose train keypoints DATA/`: train a pose-keypoint MLP into models/<run>/."""

from __future__ import annotations

import click

from edgepose.cli.common import console, parse_int_list, print_json
from edgepose.cli.eval_cmd import print_evaluation


@click.command()
@click.argument("data", type=click.Path(path_type=str))
@click.option("--layout", default=None,
              type=click.Choice(["coco17", "mediapipe33", "body14"]),
              help="Keypoint layout of the files [default: the layout the files record, else "
                   "the one of their length: 28 body14, 34 coco17, 132 mediapipe33].")
@click.option("--category", "categories", multiple=True,
              help="Train this category folder (e.g. stance); repeat for several "
                   "[default: every category, one model each].")
@click.option("--combine-categories", is_flag=True,
              help="One model over every category's classes (<category>/<class>) instead "
                   "of one model per category.")
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
              help="Per-joint Gaussian jitter, in coordinate units (times --unit; 0: off).")
@click.option("--unit", default=None, type=click.FloatRange(min=0, min_open=True),
              help="One coordinate unit in the files' units: 1 for x, y in 0..1, e.g. 640 "
                   "for pixels [default: from the training data: 1 when every |x|, |y| <= 2, "
                   "else the next power of two of the largest].")
@click.option("--epochs", default=None, type=int,
              help="[default: ~2,000 optimizer steps, 40..250 epochs]")
@click.option("--batch-size", default=None, type=int,
              help="[default: the power of two nearest training samples / 8, 8..128]")
@click.option("--lr", default=1e-3, show_default=True, type=float)
@click.option("--patience", default=None, type=int,
              help="EarlyStopping patience in epochs, 0: off [default: ~500 optimizer "
                   "steps, 10..40 epochs].")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--deterministic/--no-deterministic", default=True, show_default=True)
@click.option("--val-split", default=0.15, show_default=True, type=float)
@click.option("--test-split", default=0.15, show_default=True, type=float)
@click.option("--strict", is_flag=True,
              help="Fail on any broken file or label disagreement instead of reporting it.")
@click.option("--class-weight", default="auto", show_default=True,
              type=click.Choice(["auto", "none"]))
@click.option("--output", "-o", default=None,
              help="Run directory; OUT/<category> for each of several categories [default: "
                   "models/<dataset>-keypoints-<layout>-<category>-<timestamp>].")
@click.option("--overwrite", is_flag=True, help="Reuse a non-empty --output directory.")
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch progress.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def keypoints(data: str, layout: str | None, categories: tuple[str, ...],
              combine_categories: bool, hidden: str, dropout: float,
              normalization: str, mirror: bool, rotation: float, scale: float, jitter: float,
              unit: float | None, epochs: int | None, batch_size: int | None, lr: float,
              patience: int | None, seed: int,
              deterministic: bool, val_split: float, test_split: float, strict: bool,
              class_weight: str, output: str | None, overwrite: bool, quiet: bool,
              as_json: bool) -> None:
    """Train keypoint classifiers on DATA/<category>/<class>/*.json (or CSV).

    One model per category (DATA/<class>/*.json is one category), each in its
    own run directory (--output OUT: OUT/<category> when there are several)
    with model.keras (raw keypoint vector in, probabilities out, normalisation
    inside), labels.txt, splits.json, config.json, history.csv, metrics.json
    and plots. --json prints one result object, or a list for several models.

    \f

    Raises:
        click.UsageError: ``--combine-categories`` together with ``--category``.
    """
    from edgepose.train.hyperparameters import DataParams, TrainingParams
    from edgepose.train.keypoint_classifier import (
        KeypointModelParams,
        KeypointTrainOptions,
        train_keypoint_categories,
        train_keypoint_classifier,
    )
    from edgepose.train.progress import TrainProgress

    if combine_categories and categories:
        raise click.UsageError("--combine-categories trains every category together; "
                               "leave out --category")

    options = KeypointTrainOptions(
        model=KeypointModelParams(layout=layout, hidden=parse_int_list(hidden), dropout=dropout,
                                  normalization=normalization, mirror=mirror,
                                  rotation=rotation, scale=scale, jitter=jitter, unit=unit),
        data=DataParams(val_split=val_split, test_split=test_split, strict=strict,
                        class_weight=class_weight),
        training=TrainingParams(epochs=epochs or 1, batch_size=batch_size or 1, lr=lr,
                                seed=seed, patience=patience or 0,
                                deterministic=deterministic,
                                verbose=0),
        auto_fit=tuple(name for name, given in (("batch_size", batch_size), ("epochs", epochs),
                                                ("patience", patience)) if given is None),
        output=output, overwrite=overwrite)
    # Progress on stdout: the data summary first, then one line (or bar) per epoch;
    # --json and --quiet print nothing until the end.
    progress = None if quiet or as_json else TrainProgress(console)
    if combine_categories:
        results = [train_keypoint_classifier(data, options, progress)]
    else:
        results = train_keypoint_categories(data, options, list(categories) or None, progress)
    if as_json:
        print_json(results[0] if len(results) == 1 else results)
        return
    for result in results:
        print_result(result)
    if len(results) > 1:
        for result in results:
            console.print(summary_line(result), highlight=False)


def summary_line(result) -> str:
    """``stance: test accuracy 0.914 (35 samples), 2 classes -> RUN_DIR``."""
    name = result.category or "all categories"
    return (f"{name}: {result.metrics.split} accuracy {result.metrics.accuracy:.3f} "
            f"({result.metrics.samples} samples), {len(result.classes)} classes -> "
            f"{result.run_dir}")


def print_result(result) -> None:
    """Problems found in the data, what was trained, the evaluation, the run directory."""
    for problem in result.problems:
        console.print(f"[yellow]warning[/yellow]: {problem}", markup=True, highlight=False)
    fit = result.fit
    unit = "0..1" if result.unit == 1.0 else f"pixels (unit {result.unit:g})"
    console.print(f"{result.category or 'all categories'}: {result.layout} keypoints in {unit}, "
                  f"classes {', '.join(result.classes)}; splits {result.split_sizes}; "
                  f"{result.parameters} parameters; batch {fit.get('batch_size')}, "
                  f"patience {fit.get('patience')}; {result.epochs} epochs in "
                  f"{result.seconds:.1f} s", highlight=False)
    print_evaluation(result.metrics, result.run_dir)
    console.print(f"run directory: {result.run_dir}")
