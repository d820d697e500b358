"""`edgepose predict MODEL INPUT...`: top-k labels for images or keypoint files (device side)."""

from __future__ import annotations

import click

from edgepose.cli.common import THREADS, console, print_json, print_table
from edgepose.cli.contract_options import contract_options, override_option, stated_from


def print_predictions(result) -> None:
    """One row per input: the top-k labels with scores, then how the model ran."""
    rows = [[p.input, p.no_person or ", ".join(f"{t.label} {t.score:.3f}" for t in p.top),
             f"{p.latency_ms:.2f}"] for p in result.predictions]
    print_table(f"{result.model} ({result.task})", ["input", "top-k", "ms"], rows)
    # Measured for ai-edge-litert (XNNPACK on one thread); other runtimes choose their own.
    default = "default (1)" if result.runtime.startswith("ai_edge_litert") else "default"
    threads = result.threads if result.threads is not None else default
    if result.threads_auto:
        threads = f"{threads} ({result.threads_auto})"
    xnnpack = result.delegation if result.xnnpack else "off"
    console.print(f"runtime {result.runtime}, threads {threads}, XNNPACK: {xnnpack}; "
                  f"labels: {result.labels_source}")
    for failed in result.failed:
        console.print(f"[yellow]could not process[/yellow] {failed.input}: {failed.reason}",
                      highlight=False, soft_wrap=True)  # file names stay copyable


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=str))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("-k", "--top-k", "k", default=3, show_default=True, type=click.IntRange(min=1),
              help="How many labels to show per input.")
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=str),
              help="Manifest JSON (default: MODEL with .json next to it, if present).")
@click.option("--labels", type=click.Path(dir_okay=False, path_type=str),
              help="Labels file, one per line (overrides manifest and embedded labels).")
@click.option("--threads", type=THREADS, default=None,
              help="Interpreter threads, or 'auto': time 1, 2, 4 ... up to the cores "
                   "available and keep the fewest within 10% of the fastest (default: the "
                   "runtime's choice, one XNNPACK thread).")
@click.option("--no-xnnpack", is_flag=True, help="Run on the builtin kernels, for comparison.")
@click.option("--runtime", "prefer", type=click.Choice(["ai_edge_litert", "tflite_runtime",
                                                        "tensorflow"]),
              help="Force an interpreter package (default: first one installed).")
@contract_options
@override_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--strict", is_flag=True,
              help="Exit 2 when any input could not be processed (default: list it, go on).")
def predict(model: str, inputs: tuple[str, ...], k: int, manifest: str | None,
            labels: str | None, threads: int | str | None, no_xnnpack: bool,
            prefer: str | None,
            input_range: str | None, input_mean: str | None, input_std: str | None,
            channel_order: str | None, override_contract: bool, as_json: bool, strict: bool
            ) -> None:
    """Print the top-k labels of MODEL for each INPUT (image or keypoint JSON file).

    Inputs that cannot be read are listed with the reason and the others are
    still classified; the exit code is 2 only when none could be processed, or
    with --strict when any could not.
    """
    from edgepose.runtime.predict import predict_files

    result = predict_files(model, inputs, k=k, manifest=manifest, labels=labels,
                           num_threads=threads, use_xnnpack=not no_xnnpack, prefer=prefer,
                           stated=stated_from(input_range, input_mean, input_std,
                                              channel_order, override_contract))
    if as_json:
        print_json(result)
    else:
        print_predictions(result)
    result.check(strict)
