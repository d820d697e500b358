"""CI step: the runtime on emulated Pi CPUs (Cortex-A76 + Python 3.13, Cortex-A72 + Python 3.11).

Installs what it needs on a fresh Debian machine (apt-get: qemu-user, debootstrap,
gcc; debootstrap of the guest root; aarch64 wheels with pip --platform), builds
or reuses the cached rig, then runs tests/test_arm_emulated.py against each board:
ARM vs x86 int8 bit-exactness, XNNPACK really active, float agreement, accuracy,
identical instruction counts across runs, device side importable without TensorFlow.

    python benchmarks/arm/ci_check.py [--budget SECONDS]

Prints PASS/FAIL per check and ends with the plain line "N passed, M failed".
Exit code 0 only when nothing failed. Time-boxed: a check that would start after
the budget is spent counts as failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
BOARDS = ((5, "3.13"), (4, "3.11"))
# A test module that imports any of these at module level (itself or through a tests/
# helper) is host-only; the guest has only the device side's dependencies.
HOST_ONLY = ("tensorflow", "keras", "sklearn", "skimage", "cv2", "edgepose.train",
             "edgepose.converters", "edgepose.keras_quiet")
# Packaging tests build wheels and venvs with the workstation's pip, and `keypoints fetch`
# drives pip: the rig's guest Python has no pip, so these stay on the host too.
HOST_SIDE_TESTS = ("test_train_", "test_converters_", "test_edgepose_install_", "test_pose_fetch")
# A test whose *fixture* (a frame in tests/) needs one of these is host-only too.
HOST_CODE = ("tests/", "edgepose/train/", "converters/", "edgepose/quiet.py",
             "edgepose/keras_quiet.py")
MISSING_ON_DEVICE = re.compile(r"No module named '(tensorflow|keras|sklearn|skimage|cv2)")


def _run(cmd: list[str], budget_left: float, env: dict | None = None) -> tuple[int, str]:
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=max(budget_left, 1))
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {budget_left:.0f} s"
    return proc.returncode, (proc.stdout + proc.stderr)


def arm_test_modules() -> tuple[list[str], dict[str, str]]:
    """Test modules that can run inside the emulator, and why the others cannot."""
    tests = ROOT / "tests"
    eligible, host_only = [], {}
    for module in sorted(tests.glob("test_*.py")):
        if module.name.startswith("test_arm_"):
            continue  # drives the emulator from the host
        if module.name.startswith(HOST_SIDE_TESTS):
            host_only[module.name] = "tests host-side code (training, conversion)"
            continue
        stack, seen, reason = [module], set(), None
        while stack and reason is None:
            path = stack.pop()
            seen.add(path)
            text = path.read_text(encoding="utf-8")
            for word in HOST_ONLY:
                if re.search(rf"^(?:from|import)\s+{re.escape(word)}\b", text, re.M):
                    reason = f"{path.name} imports {word}"
                    break
            for name in re.findall(r"^(?:from|import)\s+(\w+)", text, re.M):
                helper = tests / f"{name}.py"
                if helper.is_file() and helper not in seen:
                    stack.append(helper)
        if reason:
            host_only[module.name] = reason
        else:
            eligible.append(f"tests/{module.name}")
    return eligible, host_only


def fixture_needs_host(text: str) -> bool:
    """True when a failure is a test helper or host-side code importing a host-only package.

    The frame that raised must be in tests/, edgepose/train/ or converters/: the same
    error raised from device-side code is a real bug (it must not need TensorFlow).
    """
    lines = text.splitlines()
    location = re.compile(r"^\S+\.py:\d+: ")
    for i, line in enumerate(lines):
        if line.startswith("E ") and MISSING_ON_DEVICE.search(line):
            # pytest's long format names an entry's file *after* its source lines.
            after = [x for x in lines[i:] if location.match(x)]
            before = [x for x in lines[:i] if location.match(x)]
            frame = after[0] if after else (before[-1] if before else "")
            return frame.startswith(HOST_CODE)
    return False


def _install_pytest(rig) -> Path:
    """pytest (pure-Python wheels) for the guest, outside the root: the guest reads it by its
    host path."""
    import importlib.metadata

    target = rig.home / "testsite"
    version = importlib.metadata.version("pytest")
    if any(target.glob(f"pytest-{version}.dist-info")) and any(target.glob("matplotlib-*")):
        return target
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--only-binary=:all:", "--python-version", rig.python, "--target", str(target),
           "--platform", "manylinux_2_28_aarch64", "--platform", "manylinux_2_27_aarch64",
           "--platform", "manylinux2014_aarch64", "--platform", "any", f"pytest=={version}",
           "matplotlib"]  # `edgepose bench --plot` is an optional device-side feature
    subprocess.run(cmd, check=True, capture_output=True)
    return target


def prebuild_fixtures(budget_left: float) -> Path | None:
    """Build tests/tflite_models.py's tiny run on the host (TensorFlow) for the guest's tests."""
    import hashlib

    source = (ROOT / "tests" / "tflite_models.py").read_bytes()
    folder = ROOT / ".cache" / "arm-ci-fixtures" / hashlib.sha256(source).hexdigest()[:12]
    if (folder / "tiny_run.json").is_file():
        return folder
    code, out = _run([sys.executable, "-c", "import sys; sys.path[:0] = ['benchmarks/arm']; "
                      "from pathlib import Path; import prebuilt_fixtures; "
                      f"prebuilt_fixtures.build(Path({str(folder)!r}))"], budget_left)
    if code != 0:
        print(f"      could not prebuild fixture models: {out.strip().splitlines()[-1:]}")
        return None
    return folder


def guest_pytest(pi: int, python: str, modules: list[str], report: Path,
                 budget_left: float, prebuilt: Path | None) -> tuple[int, str]:
    """Run ``modules`` with pytest inside the emulated Pi (repository as working directory)."""
    from edgepose.arm.rig import emulator_command, require_rig, sync_device_code

    rig = require_rig(pi, python)
    sync_device_code(rig)
    testsite = _install_pytest(rig)
    cmd, env = emulator_command(rig, pi, ["-m", "pytest", "-q", "-p", "no:cacheprovider",
                                          "-p", "prebuilt_fixtures", f"--junitxml={report}",
                                          *modules])
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}:{testsite}:{ROOT / 'benchmarks' / 'arm'}"
    if prebuilt is not None:
        env["EDGEPOSE_ARM_PREBUILT"] = str(prebuilt)
    return _run(cmd, budget_left, env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=900.0, help="seconds for everything")
    args = parser.parse_args()
    deadline = time.monotonic() + args.budget
    results: list[tuple[str, bool, str]] = []

    def record(name: str, ok: bool, detail: str) -> None:
        results.append((name, ok, detail))
        print(f"{'PASS' if ok else 'FAIL'}  {name}  {detail}", flush=True)

    edgepose = [sys.executable, "-m", "edgepose"]
    for pi, python in BOARDS:
        started = time.monotonic()
        code, out = _run(edgepose + ["arm", "setup", "--pi", str(pi), "--python", python,
                                     "--install-tools", "--json"], deadline - time.monotonic())
        record(f"setup pi{pi} python{python}", code == 0,
               f"{time.monotonic() - started:.0f} s" + ("" if code == 0 else
                                                        f": {out.strip().splitlines()[-1:]}"))
        if code != 0:
            continue
        report = ROOT / f".cache/arm-ci-pi{pi}.xml"
        report.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, EDGEPOSE_ARM_PI=str(pi), EDGEPOSE_ARM_PYTHON=python)
        started = time.monotonic()
        code, out = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/test_arm_emulated.py", f"--junitxml={report}"],
                         deadline - time.monotonic(), env)
        seconds = time.monotonic() - started
        if not report.is_file():
            record(f"pi{pi} tests", False, out.strip().splitlines()[-1:] or "no report")
            continue
        for case in ET.parse(report).getroot().iter("testcase"):
            failed = case.find("failure") is not None or case.find("error") is not None
            skipped = case.find("skipped") is not None
            # A skip here means the rig was not found: that is a failure of this step.
            record(f"pi{pi} py{python} {case.get('name')}", not failed and not skipped,
                   "skipped: " + (case.find("skipped").get("message") or "")
                   if skipped else f"{float(case.get('time', 0)):.1f} s")
        report.unlink()
        print(f"      pi{pi} tests took {seconds:.0f} s", flush=True)

        # The device side's own tests, run by the guest's Python on the emulated CPU.
        modules, host_only = arm_test_modules()
        print(f"      on ARM: {' '.join(m.removeprefix('tests/') for m in modules)}; "
              f"host-only: {len(host_only)} modules", flush=True)
        started = time.monotonic()
        prebuilt = prebuild_fixtures(deadline - time.monotonic())
        code, out = guest_pytest(pi, python, modules, report, deadline - time.monotonic(),
                                 prebuilt)
        if not report.is_file():
            record(f"pi{pi} py{python} device tests on ARM", False,
                   " | ".join(out.strip().splitlines()[-3:]) or "no report")
            continue
        counts = {"passed": 0, "failed": 0, "skipped": 0, "host-only": 0}
        for case in ET.parse(report).getroot().iter("testcase"):
            name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
            problem = case.find("failure")
            problem = problem if problem is not None else case.find("error")
            if problem is not None and fixture_needs_host(problem.text or ""):
                counts["host-only"] += 1
            elif problem is not None:
                counts["failed"] += 1
                record(f"pi{pi} py{python} ARM {name}", False,
                       (problem.get("message") or "")[:200])
            elif case.find("skipped") is not None:
                counts["skipped"] += 1
            else:
                counts["passed"] += 1
                results.append((f"pi{pi} ARM {name}", True, ""))
        report.unlink()
        verdict = "PASS" if not counts["failed"] and counts["passed"] else "FAIL"
        print(f"{verdict}  pi{pi} py{python} device tests on ARM: "
              + ", ".join(f"{n} {k}" for k, n in counts.items())
              + f" (host-only = fixture needs TensorFlow; {time.monotonic() - started:.0f} s)",
              flush=True)
        if not counts["passed"]:
            record(f"pi{pi} py{python} device tests on ARM", False, "nothing passed")

    passed = sum(ok for _, ok, _ in results)
    failed = len(results) - passed
    print(f"\nemulated Pi check: {'PASS' if failed == 0 and passed else 'FAIL'} "
          f"({time.monotonic() - deadline + args.budget:.0f} s)")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed else 1


if __name__ == "__main__":
    sys.exit(main())
