"""Every backbone trained from scratch on the bundled digits, next to scikit-learn baselines.

Issue 11, section 7: ``edgepose train image DIGITS --weights none --epochs 3``
once validated at exactly chance (BatchNorm statistics still at their initial
values) and exited 0. This benchmark trains each registered backbone with
``weights none`` through the real trainer (so BatchNorm re-estimation and the
chance checks are what is measured), then fits two scikit-learn baselines on
the *same* train split and scores everything on the *same* test split:

- logistic regression on standardised pixels (``StandardScaler`` + ``LogisticRegression``);
- k-nearest neighbours (k = 1, 3, 5, chosen on the validation split) on the pixels.

The baselines see each PNG as 16 x 16 greyscale in 0..1 (the digits are 8x8
scans: more pixels add no information, only dimensions). A backbone "beats the
baselines" when its test accuracy is above both. Accuracy does not depend on
machine load (seeded, op determinism on); the seconds recorded do, and are
shown only to say what a run costs.

Writes ``benchmarks/results/<machine>/scratch_baselines[_<tag>].json`` and ``.md``.
Run: ``.venv/bin/python benchmarks/scratch_baselines.py [--epochs 5] [--backbones a,b]``.
Default: every backbone at 96 px, 5 epochs, no augmentation (a mirrored digit is
another symbol), about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np  # noqa: E402
from benchmark_utils import machine_facts, results_dir, write_results  # noqa: E402  (the one path set-up)

BASELINE_SIZE = 16


@dataclass
class BackboneRow:
    backbone: str
    input_size: int
    epochs: int
    val_accuracy: float | None
    test_accuracy: float
    quality_ok: bool  # no chance warning on val/test
    warnings: list[str]
    batchnorm_layers: int  # re-estimated before each validation and before saving
    seconds: float  # wall clock of the training run (machine load dependent)
    beats_baselines: bool = False


@dataclass
class BaselineRow:
    name: str
    settings: str
    val_accuracy: float
    test_accuracy: float


@dataclass
class ScratchReport:
    machine: dict
    dataset: str
    split_sizes: dict[str, int]
    settings: dict
    baselines: list[BaselineRow] = field(default_factory=list)
    backbones: list[BackboneRow] = field(default_factory=list)


def pixels(root: Path, samples) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's PNG as a flat BASELINE_SIZE^2 greyscale vector in 0..1, and labels."""
    from PIL import Image

    x = np.stack([np.asarray(Image.open(root / s.path).convert("L").resize(
        (BASELINE_SIZE, BASELINE_SIZE), Image.Resampling.BILINEAR), dtype=np.float32).ravel()
        / 255.0 for s in samples])
    return x, np.array([s.label for s in samples], dtype=np.int64)


def baselines(root: Path, splits, seed: int = 0) -> list[BaselineRow]:
    """Logistic regression and k-NN on the run's own train/val/test split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = (pixels(root, splits.samples(s))
                                                for s in ("train", "val", "test"))
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000,
                                                                  random_state=seed))
    logistic.fit(x_tr, y_tr)
    rows = [BaselineRow("logistic_regression", "StandardScaler + LogisticRegression(lbfgs)",
                        float(logistic.score(x_va, y_va)), float(logistic.score(x_te, y_te)))]
    best = max((KNeighborsClassifier(k).fit(x_tr, y_tr) for k in (1, 3, 5)),
               key=lambda knn: knn.score(x_va, y_va))
    rows.append(BaselineRow("k_nearest_neighbours", f"k={best.n_neighbors} (best on val)",
                            float(best.score(x_va, y_va)), float(best.score(x_te, y_te))))
    return rows


def train_backbone(data: Path, backbone: str, size: int, epochs: int, out: Path,
                   seed: int = 0):
    from edgepose.keras_quiet import keras
    from edgepose.train.hyperparameters import (
        DataParams,
        ImageModelParams,
        ImageTrainOptions,
        TrainingParams,
    )
    from edgepose.train.image_classifier import train_image_classifier

    keras.backend.clear_session()
    options = ImageTrainOptions(
        model=ImageModelParams(backbone=backbone, input_size=size, weights="none",
                               augment="none"),
        data=DataParams(), training=TrainingParams(epochs=epochs, seed=seed, patience=0,
                                                   verbose=0),
        output=str(out / backbone), overwrite=True)
    started = time.perf_counter()
    result = train_image_classifier(data, options)
    return result, time.perf_counter() - started


def markdown(report: dict, slug: str) -> str:
    """The results table of a scratch_baselines.json record."""
    settings = report["settings"]
    lines = ["# Backbones trained from scratch on the bundled digits vs scikit-learn baselines",
             "",
             f"Machine `{slug}`; split sizes {report['split_sizes']} (seeded, stratified); "
             f"{settings['input_size']} px, {settings['epochs']} epochs, weights none, no "
             "augmentation; baselines on "
             f"{settings['baseline_pixels']} pixels of the same images. Accuracy is load "
             "independent; seconds are wall clock on a shared, busy machine (not a speed "
             "figure).", "",
             "| model | val accuracy | test accuracy | beats baselines | chance check | s |",
             "|---|---|---|---|---|---|"]
    for b in report["baselines"]:
        lines.append(f"| {b['name']} ({b['settings']}) | {b['val_accuracy']:.4f} | "
                     f"{b['test_accuracy']:.4f} | | | |")
    for r in report["backbones"]:
        val = "" if r["val_accuracy"] is None else f"{r['val_accuracy']:.4f}"
        lines.append(f"| {r['backbone']} | {val} | {r['test_accuracy']:.4f} | "
                     f"{'yes' if r['beats_baselines'] else '**no**'} | "
                     f"{'ok' if r['quality_ok'] else '**at chance**'} | {r['seconds']:.0f} |")
    test_n = report["split_sizes"].get("test", 0)
    lines += ["", "k-NN's val accuracy is the one its k was chosen on (optimistic); compare "
              "test accuracies.", ""]
    for r in report["backbones"]:
        for b in report["baselines"]:
            if r["test_accuracy"] <= b["test_accuracy"]:
                gap = round((b["test_accuracy"] - r["test_accuracy"]) * test_n)
                lines.append(f"- {r['backbone']} does not beat {b['name']}: test "
                             f"{r['test_accuracy']:.4f} vs {b['test_accuracy']:.4f} "
                             f"({gap} of {test_n} test images).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from edgepose.data.digits import write_digits
    from edgepose.rundir import RunDir
    from edgepose.train.model_spec import BACKBONES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=None, help="folder for the digits and runs [tmp]")
    parser.add_argument("--out", default=None, help="results folder [benchmarks/results/<machine>]")
    parser.add_argument("--tag", default="", help="results file suffix, e.g. epochs15")
    args = parser.parse_args(argv)
    stem = "scratch_baselines" + (f"_{args.tag}" if args.tag else "")

    slug, machine = machine_facts("tensorflow")
    out = results_dir(args.out, slug)
    with tempfile.TemporaryDirectory(prefix="edgepose-scratch-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        data = write_digits(work / "digits")
        report: ScratchReport | None = None
        for name in args.backbones.split(","):
            result, seconds = train_backbone(data, name, args.input_size, args.epochs,
                                             work / "runs", args.seed)
            quality = result.metrics.quality or {}
            if report is None:  # every run splits the same folder with the same seed
                splits = RunDir.open(result.run_dir).splits
                report = ScratchReport(
                    machine=machine, dataset="bundled digits (edgepose data digits, 64 px)",
                    split_sizes=result.split_sizes,
                    settings={"input_size": args.input_size, "epochs": args.epochs,
                              "seed": args.seed, "weights": "none", "augment": "none",
                              "batch_size": 32, "lr": 1e-3,
                              "baseline_pixels": f"{BASELINE_SIZE}x{BASELINE_SIZE} grey"},
                    baselines=baselines(Path(splits.root), splits, args.seed))
            checks = {c["split"]: c for c in quality.get("checks", [])}
            row = BackboneRow(
                backbone=name, input_size=args.input_size, epochs=result.epochs,
                val_accuracy=checks.get("val", {}).get("accuracy"),
                test_accuracy=round(result.metrics.accuracy, 4),
                quality_ok=bool(quality.get("ok", False)), warnings=quality.get("warnings", []),
                batchnorm_layers=(quality.get("batchnorm") or {}).get("layers", 0),
                seconds=round(seconds, 1))
            row.beats_baselines = all(row.test_accuracy > b.test_accuracy
                                      for b in report.baselines)
            report.backbones.append(row)
            print(f"{name}: test {row.test_accuracy:.4f}, val {row.val_accuracy}, "
                  f"beats baselines: {row.beats_baselines} ({seconds:.0f} s)", flush=True)
    assert report is not None
    write_results(out, stem, report, markdown(json.loads((out / f"{stem}.json").read_text()), slug))
    print(f"wrote {out / (stem + '.md')}")
    return 0 if all(r.beats_baselines for r in report.backbones) else 1


if __name__ == "__main__":
    sys.exit(main())
