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
KERNEL_NAMES = {"xnnpack": "XNNPACK", "reference": "reference kernels"}


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


def agreement_cell(run) -> str:
    """The "ARM vs x86" cell of one row: "identical", "2 steps apart (XNNPACK)", ..."""
    if run.identical or not run.integer_output:
        return run.agreement
    return f"{run.agreement} ({KERNEL_NAMES[run.kernels]})"


def agreement_notes(result) -> list[str]:
    """One line per kernel set whose integer outputs differ from x86: why, and what changed.

    Says how many rows differ and whether top-1 moved (the part that matters for a
    classifier); calm wording: a difference between kernel sets is expected, a silent
    one would not be.
    """
    from edgepose.arm.emulated import DIFFERENCE_CAUSES

    notes = []
    for kernels in dict.fromkeys(r.kernels for r in result.runs):
        rows = [r for r in result.runs if r.kernels == kernels and r.integer_output]
        apart = [r for r in rows if not r.identical]
        if not apart:
            continue
        steps = max(int(round(r.max_abs_diff)) for r in apart)
        moved = [r for r in apart if r.top1_agreement < 1]
        top1 = (f"top-1 changed on {len(moved)} of them" if moved
                else "top-1 the same on every input")
        notes.append(f"{KERNEL_NAMES[kernels]}: {len(apart)} of {len(rows)} integer rows differ "
                     f"from x86 by up to {steps} step{'s' if steps != 1 else ''}, {top1}. "
                     f"Why: {DIFFERENCE_CAUSES[kernels]}.")
    return notes


def print_emulated(result) -> None:
    """The ARM-vs-x86 table of an EmulatedResult, a note per kernel set that differs,
    and what its columns mean."""
    rows = []
    for r in result.runs:
        estimate = (f"{r.pi_estimate_ms[0]:.1f}-{r.pi_estimate_ms[1]:.1f}"
                    if r.pi_estimate_ms else "-")
        insns = f"{r.instructions_per_invoke:,}" if r.instructions_per_invoke else "-"
        accuracy = "-" if r.accuracy_arm is None else f"{r.accuracy_arm:.1%}"
        rows.append([Path(r.model).name, r.mode, r.kernels,
                     f"{r.delegated_nodes}/{r.total_nodes}", agreement_cell(r),
                     f"{r.top1_agreement:.0%}", accuracy, insns, estimate,
                     r.emulated_ms_per_invoke])
    print_table(f"Emulated Pi {result.pi} ({result.core}, {result.qemu}, Python "
                f"{result.guest_python}, {result.backend}) vs x86",
                ["model", "mode", "kernels", "XNNPACK", "ARM vs x86", "top-1 =",
                 "ARM acc", "insns/invoke", "Pi est. ms", "emu. ms"], rows)
    integer = [r for r in result.runs if r.integer_output]
    same = sum(r.identical for r in integer)
    if integer:
        click.echo(f"integer outputs: {same} of {len(integer)} rows bit-identical to x86")
    for note in agreement_notes(result):
        click.echo(note)
    click.echo(f"Pi est. = instructions / (IPC {result.ipc_assumed[0]}-"
               f"{result.ipc_assumed[1]} x {result.clock_ghz[0]}-{result.clock_ghz[1]} GHz), "
               "an estimate, not a measurement; emulator ms is emulator time.")
    if getattr(result, "samples", None):
        click.echo(f"accuracy on {result.samples}")
