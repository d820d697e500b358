"""Dump every output tensor of one invoke, on the emulated Pi and on x86, to compare them.

``python -m edgepose.arm.tensors MODEL INPUTS.npy KERNELS OUT.npz`` runs ``MODEL``
once per sample of ``INPUTS.npy`` (samples x the model's input shape without the
batch axis, already in the model's input dtype) with ``KERNELS`` = ``xnnpack``
(the default delegate) or ``reference`` (TFLite's builtin kernels, no delegate)
on one thread, and saves every *subgraph output* tensor of sample ``i`` under
``"s<i>_t<tensor index>"``.

To see intermediate values under XNNPACK, whose delegated partition hides them
(``experimental_preserve_all_tensors`` shows only tensors outside partitions),
the host first rewrites the model so that every op's output is also a subgraph
output (benchmarks/arm/localise_diff.py): XNNPACK then has to write each one
out, computed by the same micro-kernel as in the unmodified model.

Device side: numpy and the runtime only (runs inside the emulator).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgepose.runtime.interpreter import load_interpreter

KERNELS = {"xnnpack": True, "reference": False}


def dump_outputs(model: str | Path, samples: np.ndarray, kernels: str) -> dict[str, np.ndarray]:
    """Every subgraph output of ``model`` for each of ``samples``, keyed ``"s<i>_t<index>"``.

    Keyed by tensor index, not name: converter names hold ``/`` and ``;``, which an
    .npz archive turns into folders. ``samples``: N x the input shape without the
    batch axis, in the model's input dtype (the interpreter's ValueError names a
    dtype mismatch).
    """
    interpreter, _ = load_interpreter(model, num_threads=1, use_xnnpack=KERNELS[kernels])
    entry = interpreter.get_input_details()[0]
    dumped = {}
    for i, sample in enumerate(samples):
        interpreter.set_tensor(entry["index"], sample.reshape(entry["shape"]))
        interpreter.invoke()
        for d in interpreter.get_output_details():
            dumped[f"s{i}_t{d['index']}"] = np.array(interpreter.get_tensor(d["index"]))
    return dumped


def main(argv: list[str]) -> None:
    model, samples, kernels, out = argv
    np.savez(out, **dump_outputs(model, np.load(samples), kernels))


if __name__ == "__main__":
    main(sys.argv[1:])
