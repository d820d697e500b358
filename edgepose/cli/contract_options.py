"""The input-contract flags shared by `convert`, `predict` and `bench`.

Named after TFLite Metadata's ``NormalizationOptions`` (mean/std) and MediaPipe
Model Maker; see the README section "Input contract".
"""

from __future__ import annotations

from collections.abc import Callable

import click

from edgepose.runtime.input_contract import StatedContract, stated_contract


def contract_options(command: Callable) -> Callable:
    """Add ``--input-range``, ``--input-mean``, ``--input-std``, ``--channel-order``."""
    options = [
        click.option("--input-range", default=None, metavar="LO,HI",
                     help="pixel range the model wants, e.g. 0,255 | 0,1 | -1,1 (for a model "
                          "edgepose did not train)."),
        click.option("--input-mean", default=None, metavar="M[,M,M]",
                     help="input = (pixel - mean) / std, per channel (TFLite "
                          "NormalizationOptions)."),
        click.option("--input-std", default=None, metavar="S[,S,S]",
                     help="see --input-mean."),
        click.option("--channel-order", type=click.Choice(["rgb", "bgr"]), default=None,
                     help="channel order the model wants (default RGB)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def override_option(command: Callable) -> Callable:
    """Add ``--override-contract``: use the contract flags even where the model disagrees."""
    return click.option(
        "--override-contract", is_flag=True,
        help="Use --input-range/--input-mean/--input-std/--channel-order even where they "
             "disagree with the model's manifest, TFLite metadata or input quantization "
             "(default: refuse).")(command)


def stated_from(input_range: str | None, input_mean: str | None, input_std: str | None,
                channel_order: str | None, override: bool = False) -> StatedContract | None:
    """The flags as a :class:`StatedContract` (None when none was given)."""
    if not any((input_range, input_mean, input_std, channel_order, override)):
        return None
    return stated_contract(input_range, input_mean, input_std, channel_order, override)
