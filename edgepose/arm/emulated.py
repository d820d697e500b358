"""Run models on an emulated Pi CPU and on this x86 host, and compare.

:func:`run_emulated` writes the inputs to a job folder, runs
:mod:`edgepose.arm.guest` in-process on x86 and under ``qemu-aarch64 -cpu
cortex-a72|a76`` on the rig's aarch64 Python, and reports per model and kernel
set: whether ARM and x86 outputs agree (bit-identical is expected for integer
outputs with XNNPACK; float outputs differ in the last bits), accuracy on ARM,
whether XNNPACK really ran (delegated nodes), and the instructions per invoke
counted by the QEMU plugin.

Emulated wall time is *emulator* time and says nothing about a Pi; the Pi
latency figure is an estimate from the instruction count (docs/arm.md).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.arm.cpus import pi_cpu
from edgepose.arm.rig import emulator_command, require_rig, sync_device_code, write_views
from edgepose.errors import ConfigError, DataError, ModelError, RuntimeNotAvailable

SAMPLE_IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "colorwheel")


@dataclass
class ModelRun:
    """One model with one kernel set, on the emulated Pi and on x86."""

    model: str
    mode: str
    kernels: str  # "xnnpack" | "reference"
    xnnpack_active: bool
    delegated_nodes: int
    total_nodes: int
    delegation: str  # e.g. "1 partition, 5/6 nodes; outside: MEAN x1"
    samples: int
    integer_output: bool
    identical: bool  # ARM raw outputs bit-identical to x86
    max_abs_diff: float  # in raw output units (quantization steps for integer outputs)
    top1_agreement: float
    accuracy_arm: float | None
    accuracy_x86: float | None
    instructions_per_invoke: int | None  # median of the counted invokes
    instruction_counts: list[int] = field(default_factory=list)
    emulated_ms_per_invoke: float = 0.0  # emulator wall time: NOT a Pi latency
    pi_estimate_ms: list[float] | None = None  # [fastest, slowest] from instructions
    agreement: str = ""  # "identical", "2 steps apart", "max |d| 4.2e-07 (float)"


@dataclass
class EmulatedResult:
    """Everything :func:`run_emulated` measured."""

    pi: int
    core: str
    qemu_cpu: str
    guest_python: str
    distro: str
    backend: str
    qemu: str
    runs: list[ModelRun]
    emulator_seconds: float
    ipc_assumed: list[float]
    clock_ghz: list[float]
    samples: str | None = None  # "50 of 539 samples (stratified by class, seed 0) from ..."

    @property
    def integer_runs_identical(self) -> bool:
        """True when every integer-output run matched x86 bit for bit."""
        return all(r.identical for r in self.runs if r.integer_output)


# Why int8 outputs can differ between the emulated Pi and x86, per kernel set; the
# evidence (TFLite/XNNPACK source and the op-by-op localisation) is in docs/arm.md.
DIFFERENCE_CAUSES = {
    "reference": (
        "TFLite's builtin int8 convolutions run ruy's matrix kernels, whose requantization "
        "rounds differently per CPU: aarch64 (SQDMULH then SRSHL) rounds once, the x86 "
        "kernels round twice (a rounding high multiply, then a rounding shift), so about "
        "0.1% of a convolution's values land 1 step apart; steep ops downstream (LOGISTIC, "
        "where one input step is many output steps) magnify that. Expected, not a fault: "
        "validate int8 drift with the kernels you deploy (docs/arm.md)"),
    "xnnpack": (
        "XNNPACK's int8 MEAN ends in a float32 requantization whose last bit differs between "
        "the CPUs' code paths; a value within about 0.00002 steps of a rounding boundary "
        "lands on different sides (docs/arm.md localises it op by op)"),
}


def agreement(identical: bool, integer: bool, max_abs_diff: float) -> str:
    """One calm phrase for how ARM and x86 outputs compare.

    "identical" (bit for bit), "N step(s) apart" for integer outputs (N = the
    largest difference in quantization steps) or "max |d| X (float)" for float
    outputs, whose last bits differ with summation order on any two CPUs.
    """
    if identical:
        return "identical"
    if integer:
        steps = int(round(max_abs_diff))
        return f"{steps} step{'s' if steps != 1 else ''} apart"
    return f"max |d| {max_abs_diff:.2g} (float)"


def default_inputs(model: Path, count: int = 6) -> np.ndarray:
    """Real photographs (scikit-image's sample images) prepared for an image model.

    Raises:
        ConfigError: the model does not take images, or scikit-image (the sample photographs) is not
            installed: pass inputs.
    """
    from edgepose.runtime.classifier import Classifier

    # only the image size is used here (pixels, not the model's input contract)
    classifier = Classifier.from_file(model, num_threads=1, strict=False)
    if classifier.preprocessing is None:
        raise ConfigError("the model does not take images: pass inputs explicitly", model)
    try:
        import skimage.data
    except ImportError:
        raise ConfigError("no inputs given and scikit-image is not installed for the sample "
                          "images: pass inputs", model) from None
    rows = []
    for name in SAMPLE_IMAGES[:count]:
        image = getattr(skimage.data, name)()[..., :3]
        rows.append(np.array(classifier.prepare_image(image)))
    return np.stack(rows)


def _mode_of(model: Path, facts: dict) -> str:
    if facts.get("mode"):
        return facts["mode"]
    match = re.search(r"_(fp32|fp16|dynamic|int8|int16x8|uint8)$", model.stem)
    if match:
        return match.group(1)
    return "int8" if "int" in facts["input_dtype"] else "float"


def _write_job(folder: Path, models: list[Path], inputs: list[Path], kernels: tuple[str, ...],
               count: dict | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pairs = zip(models, inputs, strict=True)
    job = {"models": [{"path": str(m), "inputs": str(i),
                       "count_input": str(i.with_name(f"count_{i.name}"))} for m, i in pairs],
           "kernels": list(kernels), "count": count}
    (folder / "job.json").write_text(json.dumps(job, indent=2))


def qemu_version() -> str:
    """First line of ``qemu-aarch64 --version``."""
    out = subprocess.run(["qemu-aarch64", "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "unknown"


def run_emulated(models: list[Path], pi: int = 5, inputs: np.ndarray | None = None,
                 labels: np.ndarray | None = None, *, python: str | None = None,
                 cache_dir: str | Path | None = None,
                 kernels: tuple[str, ...] = ("xnnpack", "reference"),
                 count_instructions: bool = True, warmup: int = 3, repeats: int = 5,
                 timeout: float = 1800.0) -> EmulatedResult:
    """Run ``models`` on emulated Pi ``pi`` and on x86 with the same inputs; compare.

    ``inputs``: real-valued samples without the batch axis (raw RGB 0..255 for
    image models), used for every model; None takes scikit-image's sample
    photographs for image models. ``labels`` (one class index per input) adds
    accuracy. Instruction counts need the plugin (built on first use).

    Raises:
        ConfigError: no models, ``labels`` without ``inputs``, or an unknown kernel set.
        DataError: not one label per input.
        ModelError: a model file is missing.
        RuntimeNotAvailable: the emulated Pi rig is not set up.
    """
    cpu = pi_cpu(pi)
    rig = require_rig(cpu.pi, python, cache_dir)
    unknown = set(kernels) - {"xnnpack", "reference"}
    if unknown or not kernels:
        raise ConfigError(f"kernels must be xnnpack and/or reference, got {sorted(kernels)}")
    models = [Path(m).resolve() for m in models]
    if not models:
        raise ConfigError("no models given")
    for model in models:
        if not model.is_file():
            raise ModelError("model file not found", model)
    if labels is not None:
        if inputs is None:
            raise ConfigError("labels need explicit inputs")
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(inputs):
            raise DataError(f"{len(labels)} labels for {len(inputs)} inputs")
    sync_device_code(rig)
    write_views(rig)
    plugin = None
    if count_instructions:
        from edgepose.arm.plugin import build_plugin

        plugin = build_plugin(rig.cache_dir)
    count = {"warmup": warmup, "repeats": repeats} if count_instructions else None

    jobs = rig.cache_dir / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="job-", dir=jobs))
    try:
        input_files = []
        for i, model in enumerate(models):
            data = inputs if inputs is not None else default_inputs(model)
            path = folder / f"inputs_{i}.npy"
            np.save(path, np.ascontiguousarray(data))
            np.save(path.with_name(f"count_{path.name}"), np.ascontiguousarray(data[:1]))
            input_files.append(path)
        # x86 first, in-process: a bad model or input fails here in seconds, not in the emulator.
        from edgepose.arm.guest import run_job

        _write_job(folder / "x86", models, input_files, kernels, None)
        x86 = run_job(folder / "x86")
        _write_job(folder / "arm", models, input_files, kernels, count)
        started = time.monotonic()
        guest = ["-m", "edgepose.arm.guest", str(folder / "arm")]
        _emulate(*emulator_command(rig, cpu.pi, guest), timeout)
        arm = json.loads((folder / "arm" / "result.json").read_text())
        counts: list[int] = []
        if count_instructions:
            for i in range(len(models)):
                for kernels_name in kernels:
                    out = folder / f"counts_{i}_{kernels_name}.txt"
                    _emulate(*emulator_command(rig, cpu.pi, guest + [str(i), kernels_name],
                                               plugin, out), timeout)
                    counts += [int(line) for line in out.read_text().split()]
        emulator_seconds = time.monotonic() - started
        runs = _compare(models, kernels, x86, arm, folder, counts, repeats, labels, cpu)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return EmulatedResult(
        pi=cpu.pi, core=cpu.core, qemu_cpu=cpu.qemu_cpu, guest_python=arm["python"],
        distro=rig.distro, backend=arm["runs"][0]["backend"], qemu=qemu_version(), runs=runs,
        emulator_seconds=round(emulator_seconds, 1), ipc_assumed=list(cpu.ipc),
        clock_ghz=list(cpu.clock_ghz))


def run_guest(pi: int, args: list[str], *, python: str | None = None,
              cache_dir: str | Path | None = None, plugin_out: Path | None = None,
              timeout: float = 1800.0) -> None:
    """Run the guest Python with ``args`` on emulated Pi ``pi`` (device code re-synced first).

    ``plugin_out``: load the instruction-count plugin, writing to that file.
    Raises RuntimeNotAvailable (no rig, a failed or timed-out run, with the last
    lines of the guest's stderr).
    """
    cpu = pi_cpu(pi)
    rig = require_rig(cpu.pi, python, cache_dir)
    sync_device_code(rig)
    write_views(rig)
    plugin = None
    if plugin_out is not None:
        from edgepose.arm.plugin import build_plugin

        plugin = build_plugin(rig.cache_dir)
    _emulate(*emulator_command(rig, cpu.pi, args, plugin, plugin_out), timeout)


def _emulate(cmd: list[str], env: dict[str, str], timeout: float) -> None:
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeNotAvailable(f"emulated run took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-4:])
        raise RuntimeNotAvailable(f"emulated run failed (exit {proc.returncode}): {tail}")


def _compare(models, kernels, x86: dict, arm: dict, folder: Path, counts: list[int],
             repeats: int, labels, cpu) -> list[ModelRun]:
    expected = len(models) * len(kernels) * repeats
    if counts and len(counts) != expected:
        raise RuntimeNotAvailable(f"plugin reported {len(counts)} counts, expected {expected}")
    x86_out = np.load(folder / "x86" / "outputs.npz")
    arm_out = np.load(folder / "arm" / "outputs.npz")
    runs = []
    k = 0
    for i, model in enumerate(models):
        for kernels_name in kernels:
            key = f"{i}_{kernels_name}"
            a, b = arm_out[key], x86_out[key]
            facts = arm["runs"][k]
            integer = np.issubdtype(a.dtype, np.integer)
            diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
            top_a, top_b = a.argmax(axis=1), b.argmax(axis=1)
            mine = counts[k * repeats:(k + 1) * repeats] if counts else []
            per_invoke = int(np.median(mine)) if mine else None
            runs.append(ModelRun(
                model=str(model), mode=_mode_of(model, facts), kernels=kernels_name,
                xnnpack_active=facts["delegated_nodes"] > 0,
                delegated_nodes=facts["delegated_nodes"], total_nodes=facts["total_nodes"],
                delegation=facts["delegation"],
                samples=len(a), integer_output=bool(integer),
                identical=bool(a.dtype == b.dtype and np.array_equal(a, b)),
                max_abs_diff=diff, top1_agreement=float(np.mean(top_a == top_b)),
                accuracy_arm=float(np.mean(top_a == labels)) if labels is not None else None,
                accuracy_x86=float(np.mean(top_b == labels)) if labels is not None else None,
                agreement=agreement(bool(a.dtype == b.dtype and np.array_equal(a, b)),
                                    bool(integer), diff),
                instructions_per_invoke=per_invoke, instruction_counts=mine,
                emulated_ms_per_invoke=round(facts["seconds_per_invoke"] * 1e3, 2),
                pi_estimate_ms=([round(v, 2) for v in cpu.estimate_ms(per_invoke)]
                                if per_invoke else None)))
            k += 1
    return runs


def emulated_bench(models: list[Path], pi: int = 5, *, split: str | None = None,
                   data: str | Path | None = None, max_samples: int = 50, seed: int = 0,
                   **options) -> EmulatedResult:
    """``edgepose bench --emulate``: the run's labelled samples on the emulated Pi and on x86.

    Takes ``split`` of the run directory next to the first model, or the class
    folders under ``data``; without either, scikit-image's photographs (no
    accuracy). At most ``max_samples`` samples (:func:`labelled_inputs`), because
    every sample costs emulated seconds. ``options`` go to :func:`run_emulated`.
    """
    if split is None and data is None:
        return run_emulated(models, pi, **options)
    inputs, labels, described = labelled_inputs(models[0], split=split, data=data,
                                                max_samples=max_samples, seed=seed,
                                                also=models[1:])
    result = run_emulated(models, pi, inputs, labels, **options)
    result.samples = described
    return result


def labelled_inputs(model: Path, *, split: str | None = None, data: str | Path | None = None,
                    max_samples: int = 50, seed: int = 0,
                    also: Sequence[Path] = ()) -> tuple[np.ndarray, np.ndarray, str]:
    """A stratified, seeded subset of labelled samples, prepared for ``model``.

    Returns ``(inputs N x <input shape>, label indices N, description)``, the
    description saying how many of how many from where
    (:func:`edgepose.sampling.stratified_indices`); unreadable samples are left
    out and counted in it. ``data`` files ``model``'s run trained or selected on are
    left out first, as ``edgepose bench --data`` does (:func:`held_out_data`; the
    warning ends the description); DataError when every file was. Every model of the
    job gets these same inputs, so ``also`` (the other models) count too: a file any of
    their runs trained or selected on is left out as well.

    Raises:
        ConfigError: ``split`` with models of different run folders (each run has its
            own split; one emulator job feeds every model the same inputs).
        DataError: no held-out sample is left, or the samples cannot be read.
    """
    from edgepose.bench.harness import held_out_data
    from edgepose.bench.labelled_data import folder_data, label_indices, screen, split_data
    from edgepose.runtime.classifier import Classifier

    seen_note = None
    if split:
        runs = sorted({str(Path(m).resolve().parent) for m in [model, *also]})
        if len(runs) > 1:
            raise ConfigError(f"--split {split} with models of different runs "
                              f"({', '.join(runs)}): each run has its own {split} split; "
                              "emulate one run's models at a time")
        labelled = split_data(model, split)
    else:
        labelled, notes = folder_data(data), []
        for each in [model, *also]:
            labelled, note = held_out_data(labelled, Path(each))
            notes += [note] if note else []
        seen_note = "; ".join(notes) or None
    classifier = Classifier.from_file(model)
    labelled, choice = labelled.subset(max_samples, seed)
    screened = screen(classifier, labelled)
    labels = label_indices(classifier, screened.labelled)
    described = choice.describe() + (f" ({len(screened.skipped)} unreadable, left out)"
                                     if screened.skipped else "")
    described += f"; {seen_note}" if seen_note else ""
    return np.stack(screened.arrays), labels, described
