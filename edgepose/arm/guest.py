"""The job that runs inside the emulated Pi (and, unchanged, on the x86 host).

``python -m edgepose.arm.guest JOB_DIR`` reads ``JOB_DIR/job.json``, runs every
model with every kernel set through :class:`edgepose.runtime.Classifier`, and
writes ``outputs.npz`` (raw output tensors, one row per input) and ``result.json``
(delegation, backend, timing). Device side: numpy and the runtime only.

``python -m edgepose.arm.guest JOB_DIR INDEX KERNELS`` only counts: each counted
``invoke`` is bracketed by write(2) calls to /dev/null of two unusual lengths, and
the QEMU plugin (benchmarks/arm/insn_count.c) counts the instructions between
them. The markers bracket the interpreter's C++ ``Invoke`` directly: the Python
wrapper's safety check in between varies with object addresses and would make the
count differ between runs.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from edgepose.runtime.classifier import Classifier

START = b"s" * 32470  # write(2) lengths the plugin watches: keep in sync with insn_count.c
STOP = b"e" * 32471
KERNELS = {"xnnpack": True, "reference": False}


def _raw_invoke(classifier: Classifier):
    inner = getattr(classifier.interpreter, "_interpreter", None)
    return inner.Invoke if inner is not None and hasattr(inner, "Invoke") else classifier.invoke


def count_invokes(path: str, kernels: str, sample: np.ndarray, warmup: int,
                  repeats: int, maps: Path | None = None) -> None:
    """Invoke ``warmup`` times, then ``repeats`` times between the plugin's markers.

    ``maps``: copy this process's memory map there before counting (under QEMU user
    mode /proc/self/maps lists the *guest* addresses), so the host can name the
    library and function of every profiled pc.
    """
    classifier = Classifier.from_file(path, num_threads=1, use_xnnpack=KERNELS[kernels],
                                      strict=False)  # counting only: no answer is reported
    classifier.set_input(sample)
    invoke = _raw_invoke(classifier)
    for _ in range(warmup):
        invoke()
    if maps is not None:
        maps.write_text(Path("/proc/self/maps").read_text())
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for _ in range(repeats):
            os.write(null, START)
            invoke()
            os.write(null, STOP)
    finally:
        os.close(null)


def run_model(path: str, kernels: str, inputs: np.ndarray) -> tuple[np.ndarray, dict]:
    """Raw outputs for every input row, and facts about the run."""
    # strict=False: ARM and x86 get the same prepared inputs and only their raw outputs are
    # compared, so a model without a stated input contract is still comparable.
    classifier = Classifier.from_file(path, num_threads=1, use_xnnpack=KERNELS[kernels],
                                      strict=False)
    output_index = classifier._output["index"]
    report = classifier.delegation
    rows = []
    started = time.perf_counter()
    for sample in inputs:
        classifier.set_input(sample)
        classifier.invoke()
        rows.append(np.array(classifier.interpreter.get_tensor(output_index)).reshape(-1))
    seconds = (time.perf_counter() - started) / max(len(inputs), 1)
    facts = {
        "model": path, "kernels": kernels, "delegated_nodes": report.delegated_nodes,
        "total_nodes": report.total_nodes, "delegation": report.summary(),
        "input_dtype": str(classifier.input_dtype),
        "output_dtype": str(np.dtype(classifier._output["dtype"])),
        "mode": classifier.manifest.mode if classifier.manifest else None,
        "seconds_per_invoke": seconds,
        "backend": f"{classifier.backend.name} {classifier.backend.version}",
    }
    return np.stack(rows), facts


def run_job(job_dir: str | Path) -> dict:
    """Run ``job.json`` in ``job_dir``; write outputs.npz and result.json; return the result."""
    job_dir = Path(job_dir)
    job = json.loads((job_dir / "job.json").read_text())
    outputs: dict[str, np.ndarray] = {}
    runs = []
    for i, model in enumerate(job["models"]):
        inputs = np.load(job_dir / model["inputs"])
        for kernels in job["kernels"]:
            raw, facts = run_model(model["path"], kernels, inputs)
            outputs[f"{i}_{kernels}"] = raw
            runs.append(facts)
    np.savez(job_dir / "outputs.npz", **outputs)
    result = {"machine": platform.machine(), "python": platform.python_version(),
              "numpy": np.__version__, "runs": runs}
    (job_dir / "result.json").write_text(json.dumps(result, indent=2))
    return result


def count_job(job_dir: str | Path, index: int, kernels: str) -> None:
    """Count model ``index`` with ``kernels``: the only work of its process.

    A process of its own, loading only the counted sample, so that the count does
    not depend on the other models of the job or on how many samples it has.
    """
    job_dir = Path(job_dir)
    job = json.loads((job_dir / "job.json").read_text())
    model = job["models"][index]
    sample = np.load(job_dir / model["count_input"])
    maps = job_dir / f"maps_{index}_{kernels}.txt" if job["count"].get("profile") else None
    count_invokes(model["path"], kernels, sample, job["count"]["warmup"],
                  job["count"]["repeats"], maps)


if __name__ == "__main__":
    if len(sys.argv) == 4:  # JOB_DIR INDEX KERNELS
        count_job(sys.argv[1], int(sys.argv[2]), sys.argv[3])
    else:
        run_job(sys.argv[1])
