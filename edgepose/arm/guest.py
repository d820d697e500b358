"""The job that runs inside the emulated Pi (and, unchanged, on the x86 host).

``python -m edgepose.arm.guest JOB_DIR`` reads ``JOB_DIR/job.json``, runs every
model with every kernel set through :class:`edgepose.runtime.Classifier`, and
writes ``outputs.npz`` (raw output tensors, one row per input) and ``result.json``
(delegation, backend, timing). Device side: numpy and the runtime only.

When ``count`` is set, each counted ``invoke`` is bracketed by write(2) calls on
two never-opened file descriptors; the QEMU plugin (benchmarks/arm/insn_count.c)
counts the instructions between them. The markers bracket the interpreter's C++
``Invoke`` directly: the Python wrapper's safety check in between varies with
object addresses and would make the count differ between runs.
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

START_FD = 0x7ED60  # keep in sync with benchmarks/arm/insn_count.c
STOP_FD = 0x7ED61
KERNELS = {"xnnpack": True, "reference": False}


def _mark(fd: int) -> None:
    try:
        os.write(fd, b"m")
    except OSError:
        pass  # EBADF by design: the plugin saw the call, nothing else happens


def delegation(interpreter) -> tuple[int, int]:
    """(nodes run by a delegate, nodes of the model), from the interpreter's node list.

    After delegation the node list holds the original nodes plus one DELEGATE
    node per partition; a partition's members are the original nodes between
    the DELEGATE node's outputs and its inputs.
    """
    try:
        from edgepose.runtime.delegation import delegated_node_count  # type: ignore

        return delegated_node_count(interpreter)
    except ImportError:
        pass
    ops = interpreter._get_ops_details()
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    originals = [op for op in ops if op["op_name"] != "DELEGATE"]
    producer = {int(t): op["index"] for op in originals for t in op["outputs"]}
    by_index = {op["index"]: op for op in originals}
    delegated: set[int] = set()
    for node in delegates:
        boundary = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        while stack:
            tensor = stack.pop()
            index = producer.get(tensor)
            if tensor in boundary or index is None or index in delegated:
                continue
            delegated.add(index)
            stack.extend(int(t) for t in by_index[index]["inputs"] if t >= 0)
    return len(delegated), len(originals)


def _raw_invoke(classifier: Classifier):
    inner = getattr(classifier.interpreter, "_interpreter", None)
    return inner.Invoke if inner is not None and hasattr(inner, "Invoke") else classifier.invoke


def run_model(path: str, kernels: str, inputs: np.ndarray,
              count: dict | None) -> tuple[np.ndarray, dict]:
    """Raw outputs for every input row, and facts about the run."""
    classifier = Classifier.from_file(path, num_threads=1, use_xnnpack=KERNELS[kernels])
    output_index = classifier._output["index"]
    delegated, total = delegation(classifier.interpreter)
    rows = []
    started = time.perf_counter()
    for sample in inputs:
        classifier.set_input(sample)
        classifier.invoke()
        rows.append(np.array(classifier.interpreter.get_tensor(output_index)).reshape(-1))
    seconds = (time.perf_counter() - started) / max(len(inputs), 1)
    counted = 0
    if count:
        invoke = _raw_invoke(classifier)
        classifier.set_input(inputs[0])
        for _ in range(count["warmup"]):
            invoke()
        for _ in range(count["repeats"]):
            _mark(START_FD)
            invoke()
            _mark(STOP_FD)
            counted += 1
    facts = {
        "model": path, "kernels": kernels, "delegated_nodes": delegated, "total_nodes": total,
        "input_dtype": str(classifier.input_dtype),
        "output_dtype": str(np.dtype(classifier._output["dtype"])),
        "mode": classifier.manifest.mode if classifier.manifest else None,
        "seconds_per_invoke": seconds, "counted_invokes": counted,
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
            raw, facts = run_model(model["path"], kernels, inputs, job.get("count"))
            outputs[f"{i}_{kernels}"] = raw
            runs.append(facts)
    np.savez(job_dir / "outputs.npz", **outputs)
    result = {"machine": platform.machine(), "python": platform.python_version(),
              "numpy": np.__version__, "runs": runs}
    (job_dir / "result.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    run_job(sys.argv[1])
