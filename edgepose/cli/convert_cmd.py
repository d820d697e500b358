"""`edgepose convert`: Keras -> TFLite in every mode, with a drift report (host side)."""

from __future__ import annotations

import click
from rich.console import Console

from edgepose.cli.common import console, print_json, print_table
from edgepose.cli.contract_options import contract_options, override_option, stated_from

_MODE_FLAGS = ("fp32", "fp16", "dynamic", "int8", "int16x8")


@click.command()
@click.argument("source", type=click.Path(exists=False))
@click.option("--fp32", "fp32", is_flag=True, help="float32.")
@click.option("--fp16", "fp16", is_flag=True, help="float16 weights.")
@click.option("--dynamic", "dynamic", is_flag=True,
              help="dynamic range: int8 weights, float activations.")
@click.option("--int8", "int8", is_flag=True, help="full integer int8, calibrated.")
@click.option("--int16x8", "int16x8", is_flag=True,
              help="int16 activations, int8 weights, calibrated.")
@click.option("--all", "all_modes", is_flag=True,
              help="fp32, fp16, dynamic and int8 (the default without a mode flag).")
@click.option("--io", type=click.Choice(["int8", "uint8", "float"]), default="int8",
              show_default=True, help="input/output type of the int8 model.")
@click.option("--compat", type=click.Choice(["tflite-runtime"]), default=None,
              help="keep op versions loadable by tflite-runtime 2.14.")
@click.option("--calib-samples", type=int, default=200, show_default=True,
              help="representative samples (stratified from the train split).")
@click.option("--calib-data", type=click.Path(), default=None,
              help="calibrate on this folder (images or keypoint JSON) or .npy instead.")
@click.option("--allow-one-class", is_flag=True,
              help="accept calibration data with one class (folder) for a multi-class model.")
@click.option("--eval-data", type=click.Path(), default=None,
              help="measure accuracy and drift on these held-out class folders (named after "
                   "the labels; sharing no file with the calibration data or the train/val "
                   "split).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-drop", type=float, default=None,
              help="fail (exit 3) when a mode loses more accuracy points than this.")
@click.option("--debug-layers", is_flag=True,
              help="per-layer int8 error (QuantizationDebugger) + quant_debug.png.")
@click.option("--auto-fallback", is_flag=True,
              help="int8 over --max-drop: keep the worst layers float (int8-fallback).")
@click.option("--hardswish-rewrite", type=click.Choice(["auto", "on", "off"]), default="auto",
              show_default=True, help="rewrite hard-swish so XNNPACK runs it in int8.")
@click.option("--target", type=click.Choice(["host", "pi4", "pi5"]), default="host",
              show_default=True,
              help="where 'faster' is measured: this machine (timed) or an emulated Pi "
                   "(instructions per invoke; needs `edgepose arm setup --pi N`).")
@contract_options
@override_option
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON.")
def convert(source: str, fp32: bool, fp16: bool, dynamic: bool, int8: bool, int16x8: bool,
            all_modes: bool, io: str, compat: str | None, calib_samples: int,
            calib_data: str | None, allow_one_class: bool, eval_data: str | None, seed: int,
            max_drop: float | None, debug_layers: bool,
            auto_fallback: bool, hardswish_rewrite: str, target: str,
            input_range: str | None,
            input_mean: str | None, input_std: str | None, channel_order: str | None,
            override_contract: bool, as_json: bool) -> None:
    """Convert RUN_DIR (or MODEL.keras) to TFLite and report accuracy drift per mode.

    A bare MODEL.keras whose first layer is not Rescaling needs its pixel range:
    --input-range 0,1 (or -1,1, or --input-mean/--input-std). It has no test split:
    give --eval-data DIR (class folders of held-out data) to measure drift. A flag that
    disagrees with what the run or the model's Rescaling layer states is refused unless
    --override-contract. Models are
    written beside the source as model_<mode>.tflite (+ .json manifest).
    """
    from edgepose.converters import DEFAULT_MODES, ConvertOptions, run_conversion

    chosen = [name for name, flag in zip(_MODE_FLAGS, (fp32, fp16, dynamic, int8, int16x8),
                                                   strict=True)
              if flag]
    if all_modes or not chosen:
        chosen = list(DEFAULT_MODES) + [m for m in chosen if m not in DEFAULT_MODES]

    status = Console(stderr=True, highlight=False)

    def progress(message: str) -> None:
        status.print(f"[dim]{message}[/dim]", soft_wrap=True)

    options = ConvertOptions(io=io, compat=compat, calib_samples=calib_samples,
                             calib_data=calib_data, seed=seed, max_drop=max_drop,
                             debug_layers=debug_layers, auto_fallback=auto_fallback,
                             hardswish_rewrite=hardswish_rewrite, eval_data=eval_data,
                             allow_one_class=allow_one_class, target=target,
                             stated=stated_from(input_range, input_mean, input_std,
                                                channel_order, override_contract))
    report = run_conversion(source, chosen, options, progress)
    from edgepose.converters.drift_note import drop_notes

    warnings = report.data_notes() + drop_notes(report, max_drop)  # int8 over the budget
    if as_json:
        for line in warnings:  # stdout stays JSON; the warnings still show
            status.print(f"[yellow]warning:[/yellow] {line}", highlight=False, soft_wrap=True)
        print_json(report)
        return
    columns, rows = report.table(compact=True)
    keras = "n/a" if report.keras_accuracy is None else f"{100 * report.keras_accuracy:.2f}%"
    measured = report.drift_data if report.drift_measured else "no held-out data"
    print_table(f"{report.source}: Keras accuracy {keras} on {measured}", columns, rows)
    for line in warnings:  # drift not measured, skipped files, calibration, int8 drop
        console.print(f"[yellow]warning:[/yellow] {line}", highlight=False, soft_wrap=True)
    console.print(f"input contract: {report.settings.get('input_contract')}", highlight=False)
    for mode in report.modes:
        if mode.ops_outside:
            outside = ", ".join(f"{op} x{n}" for op, n in sorted(mode.ops_outside.items()))
            console.print(f"{mode.mode}: outside XNNPACK: {outside}")
    if report.fallback is not None:
        # and what it started from
        console.print(report.fallback.summary(), highlight=False, soft_wrap=True)
    if report.int8_choice is not None:
        console.print(f"int8 for --target {report.int8_choice.target}: "
                      f"{report.int8_choice.chosen} ({report.int8_choice.trigger})",
                      highlight=False)
    for note in report.notes:  # slower-than-fp32, reference-kernel int16x8, stale rows
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    console.print(f"wrote {len(report.files)} files, report: "
                  f"{report.files[-1] if report.files else ''}")
