"""`edgepose eval RUN_DIR`: test metrics and plots of a run's Keras model (host side)."""

from __future__ import annotations

from pathlib import Path

import click

from edgepose.cli.common import console, print_json, print_table


def print_evaluation(result, run_dir: str | Path) -> None:
    """Per-class table, the headline metrics and where the plots are."""
    print_table(f"{result.split} split: {result.samples} samples",
                ["class", "precision", "recall", "f1", "support"],
                [[c.name, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", c.support]
                 for c in result.per_class])
    auc = "n/a" if result.roc_auc is None else f"{result.roc_auc:.4f}"
    console.print(f"accuracy {result.accuracy:.4f}  macro-F1 {result.macro_f1:.4f}  "
                  f"ROC-AUC (one-vs-rest) {auc}")
    for name in result.plots.values():
        console.print(f"wrote {Path(run_dir) / name}")


@click.command(name="eval")
@click.argument("run_dir", type=click.Path(path_type=str))
@click.option("--split", default="test", show_default=True,
              type=click.Choice(["train", "val", "test"]), help="Which split to evaluate.")
@click.option("--batch-size", default=64, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--strict", is_flag=True,
              help="Exit 3 when the accuracy is at chance or one class is predicted.")
def eval_command(run_dir: str, split: str, batch_size: int, as_json: bool,
                 strict: bool) -> None:
    """Evaluate RUN_DIR/model.keras on its held-out split (needs edgepose[train]).

    Writes metrics.json (metrics_<split>.json for other splits), confusion_matrix.png,
    training_curves.png and, for images, predictions.png into RUN_DIR. A split whose
    accuracy is at chance, or on which one class is predicted, is a WARNING on stderr.

    \f

    Raises:
        TrainingAtChance: with ``--strict``, an accuracy at chance or a single predicted class (exit
            3).
    """
    from edgepose.train.chance import TrainingAtChance
    from edgepose.train.evaluation import evaluate_run

    result = evaluate_run(run_dir, split=split, batch_size=batch_size)
    if as_json:
        print_json(result)
    else:
        print_evaluation(result, run_dir)
    warnings = (result.quality or {}).get("warnings", [])
    for line in warnings:
        click.echo(f"WARNING: {line}: this model has not learned to tell the classes apart",
                   err=True)
    if strict and warnings:
        suffix = "" if split == "test" else f"_{split}"
        raise TrainingAtChance(f"{warnings[0]} (--strict)",
                               Path(run_dir) / f"metrics{suffix}.json")
