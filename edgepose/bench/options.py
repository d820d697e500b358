"""``BenchOptions``: how ``edgepose bench`` measures, as one validated object.

One field per measurement option of ``edgepose bench`` (``--data``, ``--split``,
``--threads``, ``--xnnpack``, ``--warmup``, ``--runs``, ``--reference``,
``--max-samples``, ``--seed``, ``--input``), checked once by
:meth:`BenchOptions.validate` before any model is loaded. Device side: no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgepose.errors import ConfigError

REFERENCES = ("auto", "keras", "fp32", "none")


@dataclass(frozen=True)
class BenchOptions:
    """The settings of one benchmark run (defaults are the CLI's).

    ``data``: a class-folder directory, or ``split``: a split name of the run
    directory each model sits in (exclusive); ``threads``: interpreter thread counts
    (None = the runtime's default); ``xnnpack``: ``use_xnnpack`` values; ``warmup`` /
    ``runs``: untimed and timed invokes per row; ``reference``: what drift is
    measured against (:data:`REFERENCES`); ``max_samples``: a stratified, ``seed``-ed
    subset of the data; ``inputs``: input name (or position) -> ``.npy`` file, to
    time a model on given arrays without accuracy; ``stated``: the user's input
    contract (a :class:`~edgepose.runtime.input_contract.StatedContract`).
    """

    data: str | Path | None = None
    split: str | None = None
    threads: Sequence[int | None] = (None,)
    xnnpack: Sequence[bool] = (True,)
    warmup: int = 20
    runs: int = 200
    reference: str = "auto"
    max_samples: int | None = None
    seed: int = 0
    inputs: dict[str, str] | None = None
    stated: object = None

    def validate(self) -> None:
        """Raise ConfigError (one line naming the option) for options that cannot go together.

        Data from both ``--data`` and ``--split``; ``--input`` arrays with labelled
        data; fewer than one timed run or a negative warm-up; an unknown reference.

        Raises:
            ConfigError: one line naming the option, for any of the combinations above.
        """
        if self.data is not None and self.split is not None:
            raise ConfigError("give either --data or --split, not both")
        if self.inputs and (self.data is not None or self.split is not None):
            raise ConfigError("give either --input arrays or labelled data (--data/--split)")
        if self.runs < 1 or self.warmup < 0:
            raise ConfigError(f"runs must be >= 1 and warmup >= 0 "
                              f"(got {self.runs}, {self.warmup})")
        if self.reference not in REFERENCES:
            raise ConfigError("reference must be auto, keras, fp32 or none, "
                              f"not {self.reference!r}")
