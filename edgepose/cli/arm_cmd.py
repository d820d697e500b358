"""``edgepose arm``: the emulated Raspberry Pi CPU rig (Pi 4 Cortex-A72, Pi 5 Cortex-A76)."""

from __future__ import annotations

from pathlib import Path

import click

from edgepose.cli.arm_view import kernel_sets, print_emulated
from edgepose.cli.common import print_json, print_table

PI_CHOICE = click.Choice(["4", "5"])
PYTHON_CHOICE = click.Choice(["3.11", "3.13"])


@click.group()
def arm() -> None:
    """Run the device side on an emulated Pi CPU (qemu-aarch64 user mode).

    \b
      edgepose arm setup --pi 5            build the cached aarch64 root (once)
      edgepose arm bench --pi 5 MODEL...   ARM vs x86 outputs, instructions/invoke
    """


@arm.command()
@click.option("--pi", type=PI_CHOICE, default="5", show_default=True, help="Board to emulate.")
@click.option("--python", "python", type=PYTHON_CHOICE, default=None,
              help="Guest Python: 3.11 (Debian bookworm) or 3.13 (trixie). "
                   "Default: 3.11 for Pi 4, 3.13 for Pi 5.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Cache folder [default: $EDGEPOSE_ARM_CACHE or ~/.cache/edgepose/arm].")
@click.option("--force", is_flag=True, help="Rebuild from scratch even if cached.")
@click.option("--install-tools", is_flag=True,
              help="apt-get install qemu-user, debootstrap and gcc if missing (root).")
@click.option("--no-plugin", is_flag=True, help="Skip building the instruction-count plugin.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def setup(pi: str, python: str | None, cache_dir: Path | None, force: bool,
          install_tools: bool, no_plugin: bool, as_json: bool) -> None:
    """Build (or reuse) the emulated Pi's root: Debian arm64, Python, ai-edge-litert, edgepose."""
    from rich.console import Console

    from edgepose.arm.rig import setup_rig

    # one line per stage on stderr (a build takes minutes); stdout keeps the table/JSON
    stages = Console(stderr=True)
    result = setup_rig(int(pi), python, cache_dir, force=force, install_tools=install_tools,
                       with_plugin=not no_plugin,
                       progress=lambda line: stages.print(line, highlight=False))
    if as_json:
        print_json(result)
        return
    rows = [["root", result.root], ["distro", f"{result.distro} (Python {result.python})"],
            ["cached", "yes" if result.cached else "no (built now)"],
            ["plugin", result.plugin or "-"], ["seconds", result.seconds]]
    rows += [[name, version] for name, version in result.packages.items()
             if name in ("ai-edge-litert", "numpy", "pillow")]
    rows += [["step", step] for step in result.steps]
    print_table(f"Emulated Pi {pi} rig", ["what", "value"], rows)


@arm.command()
@click.argument("models", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pi", type=PI_CHOICE, default="5", show_default=True, help="Board to emulate.")
@click.option("--python", "python", type=PYTHON_CHOICE, default=None,
              help="Guest Python (default: 3.11 for Pi 4, 3.13 for Pi 5).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--kernels", type=click.Choice(["both", "xnnpack", "reference"]), default="both",
              show_default=True, help="XNNPACK delegate, builtin kernels, or both.")
@click.option("--no-count", is_flag=True, help="Do not count instructions per invoke.")
@click.option("--repeats", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Counted invokes per model and kernel set.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def bench(models: tuple[Path, ...], pi: str, python: str | None, cache_dir: Path | None,
          kernels: str, no_count: bool, repeats: int, as_json: bool) -> None:
    """Run MODELS on the emulated Pi CPU and on x86 with the same real images; compare.

    Inputs are scikit-image's sample photographs. The emulator's wall time is not a
    Pi latency; the "Pi est." column is instructions / (assumed IPC x clock).
    """
    from edgepose.arm.emulated import run_emulated

    result = run_emulated(list(models), int(pi), None, python=python, cache_dir=cache_dir,
                          kernels=kernel_sets(kernels), count_instructions=not no_count,
                          repeats=repeats)
    if as_json:
        print_json(result)
        return
    print_emulated(result)
