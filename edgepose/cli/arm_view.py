"""What ``edgepose bench`` and ``edgepose arm bench`` share: the XNNPACK choice and the
emulated-Pi table.

One owner for the mapping from a command-line XNNPACK choice to interpreter settings
(``bench``) and to emulated kernel sets (``bench --emulate``, ``arm bench``), and for
printing an :class:`~edgepose.arm.emulated.EmulatedResult`.
"""

from __future__ import annotations

from pathlib import Path

import click

from edgepose.cli.common import print_table
from edgepose.errors import ConfigError

# choice -> use_xnnpack per row (host bench) and kernel set names (emulated runs);
# "xnnpack"/"reference" are arm bench's --kernels spellings of "on"/"off".
_XNNPACK = {"on": (True,), "xnnpack": (True,), "off": (False,), "reference": (False,),
            "both": (True, False)}
KERNELS = {True: "xnnpack", False: "reference"}


def xnnpack_settings(choice: str, no_xnnpack: bool = False) -> list[bool]:
    """``use_xnnpack`` values to run, in order: "on" -> [True], "both" -> [True, False].

    ``no_xnnpack`` (the ``--no-xnnpack`` flag) means "off" whatever ``choice`` says.
    Raises ConfigError for an unknown choice.
    """
    if no_xnnpack:
        choice = "off"
    if choice not in _XNNPACK:
        raise ConfigError(f"XNNPACK choice must be one of {sorted(_XNNPACK)}, not {choice!r}")
    return list(_XNNPACK[choice])


def kernel_sets(choice: str, no_xnnpack: bool = False) -> tuple[str, ...]:
    """Emulated kernel sets for a choice: "both" -> ("xnnpack", "reference")."""
    return tuple(KERNELS[on] for on in xnnpack_settings(choice, no_xnnpack))


def print_emulated(result) -> None:
    """The ARM-vs-x86 table of an EmulatedResult, and what its columns mean."""
    rows = []
    for r in result.runs:
        agreement = ("identical" if r.identical else
                     f"max |d| {r.max_abs_diff:.3g}" + (" steps" if r.integer_output else ""))
        estimate = (f"{r.pi_estimate_ms[0]:.1f}-{r.pi_estimate_ms[1]:.1f}"
                    if r.pi_estimate_ms else "-")
        insns = f"{r.instructions_per_invoke:,}" if r.instructions_per_invoke else "-"
        accuracy = "-" if r.accuracy_arm is None else f"{r.accuracy_arm:.1%}"
        rows.append([Path(r.model).name, r.mode, r.kernels,
                     f"{r.delegated_nodes}/{r.total_nodes}", agreement,
                     f"{r.top1_agreement:.0%}", accuracy, insns, estimate,
                     r.emulated_ms_per_invoke])
    print_table(f"Emulated Pi {result.pi} ({result.core}, {result.qemu}, Python "
                f"{result.guest_python}, {result.backend}) vs x86",
                ["model", "mode", "kernels", "XNNPACK", "ARM vs x86", "top-1 =",
                 "ARM acc", "insns/invoke", "Pi est. ms", "emu. ms"], rows)
    verdict = ("all integer outputs bit-identical to x86" if result.integer_runs_identical
               else "INTEGER OUTPUTS DIFFER FROM x86")
    click.echo(f"{verdict}; Pi est. = instructions / (IPC {result.ipc_assumed[0]}-"
               f"{result.ipc_assumed[1]} x {result.clock_ghz[0]}-{result.clock_ghz[1]} GHz), "
               "an estimate, not a measurement; emulator ms is emulator time.")
    if getattr(result, "samples", None):
        click.echo(f"accuracy on {result.samples}")
