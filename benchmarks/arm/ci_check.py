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
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ((5, "3.13"), (4, "3.11"))


def _run(cmd: list[str], budget_left: float, env: dict | None = None) -> tuple[int, str]:
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=max(budget_left, 1))
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {budget_left:.0f} s"
    return proc.returncode, (proc.stdout + proc.stderr)


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

    passed = sum(ok for _, ok, _ in results)
    failed = len(results) - passed
    print(f"\nemulated Pi check: {'PASS' if failed == 0 and passed else 'FAIL'} "
          f"({time.monotonic() - deadline + args.budget:.0f} s)")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed else 1


if __name__ == "__main__":
    sys.exit(main())
