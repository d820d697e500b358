"""The emulated-Pi rig: the device side on an emulated Cortex-A72 / Cortex-A76.

Tests marked ``needs_rig`` run only where the rig is set up (``edgepose arm setup``;
benchmarks/arm/ci_check.sh does it and runs this file for Pi 4 and Pi 5) and are
skipped with that reason elsewhere. Which board: ``EDGEPOSE_ARM_PI`` (4 or 5,
default: the first of 5, 4 whose rig is ready) and ``EDGEPOSE_ARM_PYTHON``.
One emulator process at a time; the models are a tiny digits net trained once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgepose.arm.cpus import PI_CPUS, pi_cpu
from edgepose.arm.rig import require_rig, rig_for
from edgepose.errors import ConfigError, RuntimeNotAvailable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "arm"))


def _chosen_pi() -> tuple[int, str] | None:
    if shutil.which("qemu-aarch64") is None:
        return None
    python = os.environ.get("EDGEPOSE_ARM_PYTHON")
    wanted = [int(os.environ["EDGEPOSE_ARM_PI"])] if os.environ.get("EDGEPOSE_ARM_PI") else [5, 4]
    for pi in wanted:
        version = python or PI_CPUS[pi].default_python
        if rig_for(version).ready:
            return pi, version
    return None


CHOSEN = _chosen_pi()
needs_rig = pytest.mark.skipif(
    CHOSEN is None, reason="emulated Pi rig not set up (or no qemu-aarch64): run `edgepose arm "
    "setup --pi 5 --install-tools`; benchmarks/arm/ci_check.py sets it up and runs these tests")


@pytest.fixture(scope="module")
def digits_models(tmp_path_factory):
    from arm_models import build_tiny

    built, test_x, test_y = build_tiny(tmp_path_factory.mktemp("arm_models"))
    return built, test_x[:24], test_y[:24]


@pytest.fixture(scope="module")
def emulated(digits_models):
    """One emulator run: int8 and fp32, XNNPACK and builtin kernels, 24 held-out digits."""
    from edgepose.arm.emulated import run_emulated

    built, x, y = digits_models
    pi, python = CHOSEN
    return run_emulated([built.int8, built.fp32], pi, x, y, python=python, repeats=3)


def _run(result, mode: str, kernels: str):
    return next(r for r in result.runs if r.mode == mode and r.kernels == kernels)


def test_cpuinfo_carries_the_pi_core_part_number():
    assert "CPU part\t: 0xd08" in pi_cpu(4).cpuinfo()
    assert "CPU part\t: 0xd0b" in pi_cpu("pi5").cpuinfo()


def test_latency_estimate_is_a_range_with_the_faster_end_first():
    fastest, slowest = pi_cpu(4).estimate_ms(18_000_000)
    assert fastest == pytest.approx(18e6 / (1.3 * 1.8e9) * 1e3)
    assert slowest == pytest.approx(18e6 / (0.8 * 1.5e9) * 1e3)


def test_unknown_pi_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown Raspberry Pi"):
        pi_cpu(3)


def test_missing_rig_says_how_to_set_it_up(tmp_path):
    with pytest.raises(RuntimeNotAvailable, match="edgepose arm setup --pi 4"):
        require_rig(4, cache_dir=tmp_path)


@needs_rig
def test_int8_xnnpack_outputs_are_bit_identical_to_x86(emulated):
    run = _run(emulated, "int8", "xnnpack")
    assert run.integer_output and run.identical and run.max_abs_diff == 0


@needs_rig
def test_xnnpack_really_runs_on_the_emulated_cpu(emulated):
    assert _run(emulated, "int8", "xnnpack").delegated_nodes > 0
    assert _run(emulated, "fp32", "xnnpack").delegated_nodes > 0
    assert _run(emulated, "int8", "reference").delegated_nodes == 0


@needs_rig
def test_float_outputs_agree_with_x86_to_float_rounding(emulated):
    for kernels in ("xnnpack", "reference"):
        run = _run(emulated, "fp32", kernels)
        assert run.max_abs_diff < 1e-5 and run.top1_agreement == 1.0


@needs_rig
def test_int8_accuracy_on_arm_equals_x86_and_beats_chance(emulated):
    run = _run(emulated, "int8", "xnnpack")
    assert run.accuracy_arm == run.accuracy_x86
    assert run.accuracy_arm > 0.8


@needs_rig
def test_instruction_count_is_identical_across_two_runs(emulated, digits_models):
    from edgepose.arm.emulated import run_emulated

    built, x, _ = digits_models
    pi, python = CHOSEN
    again = run_emulated([built.int8, built.fp32], pi, x[:2], python=python, repeats=3)
    for first in emulated.runs:
        second = _run(again, first.mode, first.kernels)
        assert first.instruction_counts == second.instruction_counts
        assert first.instructions_per_invoke > 10_000


@needs_rig
def test_device_side_imports_on_arm_without_tensorflow():
    from edgepose.arm.emulated import emulator_command

    pi, python = CHOSEN
    rig = require_rig(pi, python)
    script = ("import sys, edgepose.runtime, edgepose.runtime.classifier, edgepose.rundir, "
              "edgepose.service.pipeline, edgepose.bench; "
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
              "print(open('/proc/cpuinfo').read())")
    cmd, env = emulator_command(rig, pi, ["-c", script])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"CPU part\t: {pi_cpu(pi).midr_part}" in proc.stdout


def test_default_inputs_are_real_photographs_at_the_model_size(digits_models):
    from edgepose.arm.emulated import default_inputs

    built, _, _ = digits_models
    images = default_inputs(built.fp32, count=3)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert len({image.tobytes() for image in images}) == 3


@needs_rig
def test_bench_emulate_runs_the_test_split_on_arm_with_accuracy(tiny_run):
    from click.testing import CliRunner

    from edgepose.cli import main

    pi, _ = CHOSEN
    result = CliRunner().invoke(main, ["bench", "--emulate", f"pi{pi}", str(tiny_run.int8),
                                       "--split", "test", "--max-samples", "8", "--print-json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.output[result.output.index("{"):])["runs"][0]
    assert run["mode"] == "int8" and run["kernels"] == "xnnpack"
    assert run["identical"] is True
    assert run["accuracy_arm"] == run["accuracy_x86"]
    assert run["instructions_per_invoke"] > 0


@needs_rig
def test_profile_names_xnnpack_kernels_and_adds_up_to_the_count(digits_models):
    """Every counted instruction lands in a named function; the int8 kernels are XNNPACK's,
    with SDOT on the Cortex-A76 (ARMv8.2 dot product) and none on the A72 (ARMv8.0)."""
    from edgepose.arm.profile import CLASSES, profile_emulated

    built, x, _ = digits_models
    pi, python = CHOSEN
    profile = profile_emulated(built.int8, pi, x[0], python=python)
    assert sum(profile.by_function.values()) == profile.instructions
    assert sum(profile.by_class.values()) == profile.instructions
    top = next(iter(profile.by_function))
    assert top.startswith("libpywrap_litert_common.so:xnn_qs8"), top
    dot = profile.by_class[CLASSES[0]]
    assert (dot > 0) if pi == 5 else (dot == 0)
    assert profile.int_macs > 0


@needs_rig
def test_tensor_dumps_match_x86_for_int8_under_xnnpack(digits_models, tmp_path):
    """edgepose.arm.tensors on the emulated CPU gives the x86 dump, tensor for tensor."""
    from edgepose.arm.emulated import run_guest
    from edgepose.arm.tensors import dump_outputs
    from edgepose.runtime.interpreter import load_interpreter

    built, x, _ = digits_models
    pi, python = CHOSEN
    interpreter, _ = load_interpreter(built.int8, num_threads=1)
    entry = interpreter.get_input_details()[0]
    scale, zero = entry["quantization"]
    samples = np.clip(np.round(x[:2] / scale + zero), -128, 127).astype(np.int8)
    np.save(tmp_path / "samples.npy", samples)
    run_guest(pi, ["-m", "edgepose.arm.tensors", str(built.int8), str(tmp_path / "samples.npy"),
                   "xnnpack", str(tmp_path / "arm.npz")], python=python)
    arm = np.load(tmp_path / "arm.npz")
    x86 = dump_outputs(built.int8, samples, "xnnpack")
    assert sorted(arm.files) == sorted(x86) and len(x86) == 2
    for key, value in x86.items():
        assert np.array_equal(arm[key], value), key
