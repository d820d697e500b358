"""`edgepose bench MODEL...`: latency, accuracy and drift on this device (device side)."""

from __future__ import annotations

from pathlib import Path

import click

from edgepose.cli.arm_view import xnnpack_settings
from edgepose.cli.common import console, parse_int_list, print_table
from edgepose.cli.common import print_json as show_json
from edgepose.cli.contract_options import contract_options, override_option, stated_from
from edgepose.errors import ConfigError, DataError


def _contract_line(model: str, stated=None) -> str:
    from edgepose.errors import EdgeposeError
    from edgepose.runtime.classifier import Classifier

    try:
        return Classifier.from_file(model, num_threads=1, stated=stated,
                                    strict=False).contract.describe()
    except EdgeposeError as exc:
        return f"unknown ({exc.message})"


def print_bench(report, stated=None) -> None:
    """The comparison table, the device line, warnings, files written, baseline deltas."""
    from edgepose.bench.bench_report import device_line, terminal_table

    result = report.result
    columns, rows = terminal_table(result)
    print_table("edgepose bench", columns, rows)
    console.print(device_line(result), highlight=False)
    for reference in sorted({r.reference for r in result.rows if r.reference}):
        console.print(f"drift reference: {reference}", highlight=False)
    for name, text in sorted({(r.model, r.delegation) for r in result.rows if r.xnnpack}):
        console.print(f"XNNPACK {name}: {text}", highlight=False)
    for name in dict.fromkeys(r.model for r in result.rows):
        console.print(f"input contract {name}: {_contract_line(name, stated)}", highlight=False)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    for item in result.skipped:
        console.print(f"skipped {item.file}: {item.reason}", highlight=False, soft_wrap=True)
    for name, tensors in dict((r.model, r.tensors) for r in result.rows).items():
        for tensor in tensors:
            console.print(f"{Path(name).name}: {tensor.describe()}", highlight=False)
    for path in report.written:
        console.print(f"wrote {path}", highlight=False)
    if report.baseline is not None:
        base = report.baseline
        print_table(f"baseline {base.baseline} (tolerance {base.tolerance:.0%}; a latency "
                    "change must also exceed the noise of the two medians)",
                    ["row", "metric", "baseline", "current", "ratio", "noise ms", "verdict"],
                    [[d.row, d.metric, f"{d.baseline:.4g}", f"{d.current:.4g}",
                      f"{d.ratio:.3f}", f"±{d.noise:.3g}" if d.metric != "accuracy" else "",
                      d.verdict.upper() if d.regressed else d.verdict]
                     for d in base.deltas])


@click.command()
@click.argument("models", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=str))
@click.option("--data", type=click.Path(file_okay=False, path_type=str),
              help="Class-folder directory of labelled images or keypoint JSON files.")
@click.option("--split", type=click.Choice(["train", "val", "test"]),
              help="Use this split of the run directory each model sits in.")
@click.option("--threads", default="1", show_default=True,
              help="Comma-separated interpreter thread counts, e.g. 1,2,4.")
@click.option("--xnnpack", "xnnpack_mode", type=click.Choice(["on", "off", "both"]),
              default="on", show_default=True, help="XNNPACK delegate setting(s) to measure.")
@click.option("--no-xnnpack", is_flag=True, help="Same as --xnnpack off.")
@click.option("--warmup", default=20, show_default=True, type=click.IntRange(min=0))
@click.option("--runs", default=200, show_default=True, type=click.IntRange(min=1))
@click.option("--reference", type=click.Choice(["auto", "keras", "fp32", "none"]),
              default="auto", show_default=True,
              help="Drift reference: reference_outputs.npz (keras) or model_fp32.tflite.")
@click.option("--max-samples", type=click.IntRange(min=1), help="Use at most N labelled samples.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write JSON here.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write CSV here.")
@click.option("--md", "md_path", type=click.Path(dir_okay=False), help="Write Markdown here.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Write a latency histogram/CDF image here (needs matplotlib).")
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=str),
              help="A previous --json result to compare with; exit 3 on a regression.")
@click.option("--tolerance", default="10%", show_default=True,
              help="Allowed latency increase over the baseline.")
@click.option("--allow-missing-baseline", is_flag=True,
              help="A measured row with no baseline row is a warning; without this flag it "
                   "fails (exit 2).")
@click.option("--input", "input_files", multiple=True, metavar="NAME=FILE.npy",
              help="Time the model on this array for input NAME (or its position); repeat "
                   "per input. Other inputs get seeded random values. No accuracy.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of the --max-samples subset and of random inputs.")
@click.option("--strict", is_flag=True,
              help="Exit 2 when any sample could not be read (default: skip and list it).")
@click.option("--print-json", is_flag=True, help="Print the result as JSON instead of a table.")
@click.option("--emulate", type=click.Choice(["pi4", "pi5"]),
              help="Run on the emulated Pi CPU instead (needs `edgepose arm setup`): ARM vs "
                   "x86 agreement, accuracy on ARM, XNNPACK use, instructions per invoke.")
@contract_options
@override_option
def bench(models, data, split, threads, xnnpack_mode, no_xnnpack, warmup, runs, reference,
          max_samples, json_path, csv_path, md_path, plot_path, baseline, tolerance,
          allow_missing_baseline, input_files, seed, strict, print_json, emulate,
          input_range, input_mean, input_std, channel_order, override_contract) -> None:
    """Measure latency (invoke only and end to end), accuracy and drift of MODELs.

    With --emulate the same models and samples run on an emulated Raspberry Pi CPU;
    emulated wall time is reported as such, never as Pi latency.

    Any .tflite can be timed: a model that is not a classifier (several inputs
    or outputs, e.g. a pose-landmark model) runs on seeded random or --input
    arrays, with every input and output listed and no accuracy. Samples that
    cannot be read are skipped and listed (--strict makes that an error).
    --max-samples takes a stratified, seeded subset. With --baseline, a row that
    has no baseline row fails unless --allow-missing-baseline.

    \f

    Raises:
        DataError: with ``--strict``, any sample that could not be read (and whatever
            :func:`~edgepose.bench.session.run_session` raises).
    """
    if emulate:
        stated = stated_from(input_range, input_mean, input_std, channel_order,
                             override_contract)
        if stated is not None:  # the emulated run reads the contract from the model only
            raise ConfigError(f"--emulate does not take {stated.flags() or '--override-contract'}"
                              ": the emulated run reads the input contract from the model "
                              "(its manifest or TFLite metadata)")
        from edgepose.arm.emulated import emulated_bench
        from edgepose.cli.arm_view import kernel_sets, print_emulated

        result = emulated_bench(list(models), int(emulate[-1]), split=split, data=data,
                                max_samples=max_samples or 50, seed=seed,
                                kernels=kernel_sets(xnnpack_mode, no_xnnpack))
        if print_json:
            show_json(result)
        else:
            print_emulated(result)
        return
    from edgepose.bench.baseline import parse_tolerance
    from edgepose.bench.options import BenchOptions
    from edgepose.bench.session import bench as run

    stated = stated_from(input_range, input_mean, input_std, channel_order, override_contract)
    xnnpack = xnnpack_settings(xnnpack_mode, no_xnnpack)
    options = BenchOptions(data=data, split=split, threads=parse_int_list(threads),
                           xnnpack=xnnpack, warmup=warmup, runs=runs, reference=reference,
                           max_samples=max_samples, seed=seed,
                           inputs=parse_inputs(input_files), stated=stated)
    report = run(models, options, json_path=json_path, csv_path=csv_path, md_path=md_path,
                 plot_path=plot_path, baseline=baseline, tolerance=parse_tolerance(tolerance))
    if print_json:
        show_json(report)
    else:
        print_bench(report, stated)
    if report.baseline is not None:
        report.baseline.raise_on_regression(allow_unmatched=allow_missing_baseline)
    if strict and report.result.skipped:
        raise DataError(f"{len(report.result.skipped)} sample(s) could not be read (--strict)",
                        data or f"the {split} split")


def parse_inputs(items: tuple[str, ...]) -> dict[str, str] | None:
    """``("image=x.npy",)`` -> ``{"image": "x.npy"}``; a malformed item is a ConfigError.

    Raises:
        ConfigError: an item that is not ``NAME=FILE.npy``.
    """
    parsed = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep or not name or not file:
            raise ConfigError(f"--input must look like NAME=FILE.npy, not {item!r}")
        parsed[name] = file
    return parsed or None
