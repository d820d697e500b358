"""Accuracy vs latency per backbone and mode: the trade-off users choose from.

Reads benchmarks/results/<machine>/latency_matrix.json (benchmarks/latency_matrix.py)
and writes tradeoff.png (one panel per input size; colour = backbone, marker =
mode; x = invoke p50 at one thread, log scale; y = test accuracy) and
tradeoff.md (the plot plus the Pareto front: the choices no other choice beats
on both latency and accuracy).

Accuracy: with ``--accuracy auto`` (default) a point takes the test accuracy of
convert_matrix.json when that file has the same backbone, size and mode (its
longer training is the better estimate of what the architecture reaches), else
the latency matrix's own. Latency does not depend on the trained weight values,
only on the architecture and mode, so pairing the two is sound; the table says
which source each accuracy comes from.

    .venv/bin/python benchmarks/tradeoff.py [--results DIR] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

from benchmark_utils import results_dir  # noqa: E402  (the one path set-up)

MARKERS = {"fp32": "o", "fp16": "s", "dynamic": "^", "int8": "D", "int8-fallback": "*",
           "int16x8": "v"}


def pareto(rows: list[dict]) -> list[dict]:
    """Rows not beaten by another row on both latency (lower) and accuracy (higher)."""
    front = []
    for r in rows:
        beaten = any(o is not r and o["invoke_p50_ms"] <= r["invoke_p50_ms"]
                     and o["accuracy"] >= r["accuracy"]
                     and (o["invoke_p50_ms"] < r["invoke_p50_ms"] or o["accuracy"] > r["accuracy"])
                     for o in rows)
        if not beaten:
            front.append(r)
    return sorted(front, key=lambda r: r["invoke_p50_ms"])


def plot(rows: list[dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgepose.fileio import atomic_path

    sizes = sorted({r["size"] for r in rows}, reverse=True)
    backbones = list(dict.fromkeys(r["backbone"] for r in rows))
    colours = {b: plt.get_cmap("tab10")(i) for i, b in enumerate(backbones)}
    fig, axes = plt.subplots(1, len(sizes), figsize=(max(9.0, 6.0 * len(sizes) + 2), 5.5),
                             squeeze=False,
                             sharey=True)
    for ax, size in zip(axes[0], sizes, strict=True):
        for r in (r for r in rows if r["size"] == size):
            ax.scatter(r["invoke_p50_ms"], 100 * r["accuracy"], color=colours[r["backbone"]],
                       marker=MARKERS.get(r["mode"], "x"), s=70, edgecolors="black",
                       linewidths=0.5)
        front = pareto([r for r in rows if r["size"] == size])
        ax.plot([r["invoke_p50_ms"] for r in front], [100 * r["accuracy"] for r in front],
                color="grey", linestyle="--", linewidth=1, label="Pareto front")
        ax.set_xscale("log")
        ax.set_xlabel("invoke p50 ms (log)")
        ax.set_title(f"{size} px")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("test accuracy %")
    handles = [plt.Line2D([], [], color=colours[b], marker="o", linestyle="", label=b)
               for b in backbones]
    handles += [plt.Line2D([], [], color="black", marker=MARKERS.get(m, "x"), linestyle="",
                           label=m) for m in dict.fromkeys(r["mode"] for r in rows)]
    handles.append(plt.Line2D([], [], color="grey", linestyle="--", label="Pareto front"))
    fig.legend(handles=handles, loc="center right", fontsize=8)
    fig.suptitle(textwrap.fill(title, 110), fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.85, 0.95))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path,
                        help="results folder [benchmarks/results/<machine>]")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--accuracy", choices=["auto", "latency_matrix"], default="auto")
    args = parser.parse_args()

    from edgepose.bench.device import machine_slug
    from edgepose.fileio import write_text

    folder = results_dir(args.results, machine_slug())
    source = folder / "latency_matrix.json"
    if not source.is_file():
        raise SystemExit(f"{source}: not found; run benchmarks/latency_matrix.py first")
    matrix = json.loads(source.read_text())
    s = matrix["settings"]
    own = f"latency_matrix ({s['per_class']}/class, {s['training']!r} training)"
    rows = [dict(r, accuracy_from=own) for r in matrix["rows"]
            if r["threads"] == args.threads and r["accuracy"] is not None]
    convert = folder / "convert_matrix.json"
    if args.accuracy == "auto" and convert.is_file():
        other = json.loads(convert.read_text())
        label = f"convert_matrix ({other['per_class']}/class, {other['epochs']} epochs)"
        found = {(r["backbone"], r["size"], r["mode"]): r["accuracy"] for r in other["rows"]}
        for r in rows:
            key = (r["backbone"].replace("_", ""), r["size"], r["mode"])
            if found.get(key) is not None:
                r["accuracy"], r["accuracy_from"] = found[key], label
    left_out = []
    if s["training"] == "probe":  # a probe model's accuracy is no choice a user would make
        left_out = [r for r in rows if r["accuracy_from"] == own]
        rows = [r for r in rows if r["accuracy_from"] != own]
    if not rows:
        raise SystemExit(f"{source}: no rows with an end-to-end-trained accuracy to plot")
    title = (f"{matrix['machine']}: accuracy vs latency, {args.threads} thread(s), XNNPACK; "
             "digits, backbones weights=None; accuracy from "
             + " / ".join(sorted({r["accuracy_from"] for r in rows})))
    png = plot(rows, folder / "tradeoff.png", title)
    lines = [f"# Accuracy vs latency ({matrix['machine']})", "",
             f"From latency_matrix.json, {args.threads} thread(s); the Pareto front per input "
             "size: no other backbone x mode is both faster and more accurate.", "",
             "| px | backbone | mode | invoke p50 ms | accuracy | KB | accuracy from |",
             "|---|---|---|---|---|---|---|"]
    for size in sorted({r["size"] for r in rows}, reverse=True):
        for r in pareto([r for r in rows if r["size"] == size]):
            lines.append(f"| {size} | {r['backbone']} | {r['mode']} | {r['invoke_p50_ms']:.2f} "
                         f"| {100 * r['accuracy']:.1f}% | {r['size_bytes'] / 1024:.0f} "
                         f"| {r['accuracy_from']} |")
    if left_out:
        lines += ["", "Not plotted (no end-to-end-trained accuracy, only the latency "
                  "matrix's probe model): " + ", ".join(f"{r['backbone']} {r['size']} {r['mode']}"
                                         for r in left_out) + "."]
    lines += ["", f"![accuracy vs latency]({png.name})"]
    md = write_text(folder / "tradeoff.md", "\n".join(lines) + "\n")
    print(f"wrote {png} and {md}")


if __name__ == "__main__":
    main()
