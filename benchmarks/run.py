"""The benchmark suite behind the README's numbers: one entry point, one process per step.

Runs the per-area scripts of ``benchmarks/`` in sequence, each as its own
subprocess so memory and load-time figures are those of a fresh process, and
writes everything into ``benchmarks/results/<machine>/``: each step's
``<name>.json`` + ``.md`` (and plots), plus ``machine.json`` / ``machine.md``
with the machine facts (CPU, cores, governor, Python, TensorFlow, Keras,
numpy and runtime versions) and how long each step took. Step logs go to
``.cache/bench/logs/``. ``make bench`` runs this, then ``readme_results.py``.

    .venv/bin/python benchmarks/run.py [--only NAME,...] [--skip NAME,...] [--quick] [--list]

``--quick`` is a smoke run: smaller sizes and fewer runs, results written to
``.cache/bench/quick/<machine>/`` (never over the recorded results); steps that
can only write the recorded folder are skipped. The whole suite takes about an
hour on a 2-core x86 machine and needs several GB of memory.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from benchmark_utils import ROOT  # noqa: E402  (the one path set-up)

CACHE = ROOT / ".cache" / "bench"


@dataclass
class Step:
    """One benchmark script: how to run it in full and as a smoke run."""

    name: str
    script: str  # path under benchmarks/
    args: list[str]
    quick: list[str] | None  # None: no smoke variant (it would overwrite recorded results)
    out_flag: str | None  # the script's option for the results folder, if it has one
    about: str


def steps(cache: Path) -> list[Step]:
    """The suite, in the order it runs (peers and tradeoff use what demo/matrix left)."""
    demo = ["--record", "--work", str(cache / "data"), "--models", str(cache / "models")]
    return [
        Step("train_throughput", "train_throughput.py", [],
             ["--batches", "1", "--sizes", "160", "--backbones", "mobilenet_v3_small"], "--out",
             "training images/s per backbone x size, frozen and fine-tune"),
        Step("train_vs_fit", "train_throughput.py", ["--vs-fit", "--batches", "8", "--rounds", "3"],
             ["--vs-fit", "--batches", "1", "--rounds", "1", "--sizes", "96",
              "--backbones", "mobilenet_v3_small"], "--out",
             "edgepose's training loop vs a plain Keras fit, same model and arrays"),
        Step("runtime_overhead", "runtime_overhead.py", [], ["--runs", "40", "--blocks", "2"],
             "--out", "Classifier.classify vs a bare invoke loop"),
        Step("service_soak", "service_soak.py", [], ["--frames", "300"], "--out",
             "camera-classifier service: fps, latency, RSS growth"),
        Step("keypoints", "keypoints_bench.py", [], ["--repeats", "2", "--epochs", "5"], "--out",
             "pose-extraction latency and keypoint MLP training"),
        Step("convert_matrix", "convert_matrix.py", [], None, None,
             "conversion time, size, accuracy, drift per backbone x size x mode"),
        Step("mobilenetv3_int8", "mobilenetv3_int8.py", [], None, None,
             "MobileNetV3 int8 vs fp32, hard-swish rewrite, auto-fallback"),
        Step("latency_matrix", "latency_matrix.py", [], ["--quick"], "--out",
             "backbone x size x mode x threads: load, p50/p90, e2e, accuracy, MACs, MAC/s"),
        Step("decode_latency", "decode_latency.py", [], ["--runs", "20", "--blocks", "4"],
             "--out", "a 12 MP JPEG, file -> probabilities vs the invoke alone"),
        Step("demo", "demo.py", demo, [*demo, "--runs", "20"], "--record-dir",
             "the main job per task (image MobileNetV2, keypoint MLP) x mode"),
        Step("peers", "peers.py", ["--models", str(cache / "models")],
             ["--models", str(cache / "models"), "--runs", "40"], "--out",
             "plain Pi example loop and ONNX Runtime, side by side"),
        Step("tradeoff", "tradeoff.py", [], [], "--results",
             "accuracy vs latency plot from the latency matrix"),
        Step("field_cases", "field_cases.py", [], [], "--out",
             "the user-found cases of wrong answers, rerun: expected vs got (no timing)"),
        Step("arm_instructions", "arm/instructions.py", [], None, None,
             "instructions per invoke on emulated Pi 4 / Pi 5 (needs `make arm-setup`)"),
    ]


@dataclass
class StepResult:
    """What one step did."""

    name: str
    status: str  # "ok", "failed (exit N)", "skipped: why"
    seconds: float
    log: str | None
    written: list[str] = field(default_factory=list)
    finished: str | None = None  # UTC time the step ended (ISO 8601)
    cpu_id: str | None = None  # edgepose.bench.device.cpu_id() of the CPU it ran on


def earlier_steps(machine_json: Path, rerun: set[str], order: list[str]) -> list[StepResult]:
    """The steps an earlier run recorded in ``machine_json`` that this run does not redo.

    A ``--only`` run then leaves the other steps' rows (and when they ran) in
    ``machine.md`` instead of erasing them; unreadable or missing files give none.
    """
    from edgepose.errors import DataError
    from edgepose.fileio import read_json

    try:
        recorded = read_json(machine_json).get("steps", [])
        earlier = [StepResult(**r) for r in recorded if r.get("name") not in rerun]
    except (DataError, TypeError, AttributeError):
        return []
    rank = {name: i for i, name in enumerate(order)}
    return sorted(earlier, key=lambda r: rank.get(r.name, len(rank)))


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_facts() -> dict:
    """Machine facts plus the versions of the host and device stacks (without importing TF)."""
    from edgepose.bench.device import conditions, device_info

    runtime = _version("ai-edge-litert")
    info = device_info(f"ai_edge_litert {runtime}" if runtime else None, conditions())
    packages = {name: _version(name) for name in (
        "tensorflow", "tensorflow-cpu", "keras", "numpy", "ai-edge-litert", "tflite-runtime",
        "pillow", "onnxruntime", "tf2onnx", "onnx", "matplotlib")}
    return {"device": asdict(info), "packages": {k: v for k, v in packages.items() if v}}


# Steps whose figures do not depend on the host CPU: instructions counted on emulated
# ARM cores (QEMU executes the same guest instructions on any host).
HOST_INDEPENDENT = {"arm_instructions"}


def other_cpus(facts: dict, results: list[StepResult]) -> list[str]:
    """The recorded steps that did not run on this machine's CPU (``facts``'s cpu_id).

    One slug can name different silicon (a VM's "AMD EPYC" is Zen 4 on one host, Zen
    5 on the next), so a step recorded earlier may not compare with one run now. A
    step without a recorded CPU id (recorded before ids were kept) counts as other;
    :data:`HOST_INDEPENDENT` steps never do.
    """
    here = facts["device"].get("cpu_id")
    return [r.name for r in results if r.name not in HOST_INDEPENDENT
            and (r.cpu_id is None or r.cpu_id != here)]


def _cpu_cell(result: StepResult, here: str | None) -> str:
    if result.name in HOST_INDEPENDENT:
        return "any (emulated ARM instruction counts)"
    if result.cpu_id and result.cpu_id == here:
        return "this one"
    return result.cpu_id or "not recorded"


def machine_markdown(facts: dict, results: list[StepResult], quick: bool) -> str:
    d = facts["device"]
    rows = [("CPU", d["cpu_model"]), ("CPU id", d.get("cpu_id") or "unknown"),
            ("architecture", d["architecture"]),
            ("cores", d["cores"]), ("board", d["board"] or "-"), ("system", d["system"]),
            ("governor", d["governor"] or "unknown (no cpufreq)"), ("Python", d["python"])]
    rows += [(name, version) for name, version in facts["packages"].items()]
    lines = [f"# Machine `{d['slug']}`", "", "Facts read by edgepose.bench.device at the start "
             "of the last `benchmarks/run.py`" + (" --quick" if quick else "") + ".", "",
             "| fact | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    if d.get("warnings"):
        lines += [""] + [f"> warning: {w}" for w in d["warnings"]]
    lines += ["", "## Steps recorded in this folder", ""]
    other = other_cpus(facts, results)
    if other:
        lines += [f"> warning: {', '.join(other)} ran on another CPU than the one above, or "
                  "on one not recorded, under the same name: compare their figures with the "
                  "other steps' only after rerunning them here (`benchmarks/run.py --only "
                  f"{','.join(other)}`).", ""]
    here = d.get("cpu_id")
    lines += ["| step | status | seconds | finished (UTC) | CPU |", "|---|---|---|---|---|"]
    lines += [f"| {r.name} | {r.status} | {r.seconds:.0f} | {r.finished or '-'} | "
              f"{_cpu_cell(r, here)} |" for r in results]
    return "\n".join(lines) + "\n"


def _mtimes(out: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in out.iterdir() if p.is_file()} \
        if out.is_dir() else {}


def run_step(step: Step, out: Path, quick: bool, logs: Path,
             cpu: str | None = None) -> StepResult:
    """Run one step in its own process; its output goes to a log file.

    ``cpu``: the CPU id (``edgepose.bench.device.cpu_id``) recorded with the step.
    """
    args = step.quick if quick else step.args
    if args is None:
        return StepResult(step.name, "skipped: no --quick variant (writes recorded results)",
                          0.0, None, cpu_id=cpu)
    command = [sys.executable, str(ROOT / "benchmarks" / step.script), *args]
    if step.out_flag:
        command += [step.out_flag, str(out)]
    log = logs / f"{step.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    before = _mtimes(out)
    started = time.time()
    with log.open("w") as handle:
        handle.write("$ " + " ".join(command) + "\n")
        handle.flush()
        code = subprocess.run(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT).returncode
    seconds = time.time() - started
    status = "ok" if code == 0 else f"failed (exit {code})"
    written = sorted(name for name, mtime in _mtimes(out).items() if before.get(name) != mtime)
    finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return StepResult(step.name, status, seconds, str(log), written, finished, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated step names to run")
    parser.add_argument("--skip", help="comma-separated step names to leave out")
    parser.add_argument("--quick", action="store_true", help="smoke run (see module docstring)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="datasets, runs and logs")
    parser.add_argument("--list", action="store_true", help="list the steps and exit")
    args = parser.parse_args()

    from edgepose.bench.device import machine_slug
    from edgepose.fileio import write_json, write_text

    cache = args.cache / "quick" if args.quick else args.cache
    suite = steps(cache)
    names = [s.name for s in suite]
    if args.list:
        for s in suite:
            print(f"{s.name:18} {s.about}")
        return
    chosen = args.only.split(",") if args.only else names
    skipped = args.skip.split(",") if args.skip else []
    unknown = sorted(set(chosen + skipped) - set(names))
    if unknown:
        raise SystemExit(f"unknown steps {unknown}; steps: {', '.join(names)}")
    slug = machine_slug()
    out = (cache if args.quick else ROOT / "benchmarks" / "results") / slug
    out.mkdir(parents=True, exist_ok=True)
    facts = machine_facts()
    todo = [s for s in suite if s.name in chosen and s.name not in skipped]
    print(f"edgepose benchmark suite on {slug}: {len(todo)} steps -> {out}", flush=True)
    results: list[StepResult] = []
    earlier = earlier_steps(out / "machine.json", {s.name for s in todo}, names)
    started = time.time()
    for i, step in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {step.name}: {step.about} ...", flush=True)
        result = run_step(step, out, args.quick, cache / "logs", facts["device"]["cpu_id"])
        results.append(result)
        print(f"[{i}/{len(todo)}] {step.name}: {result.status}, {result.seconds:.0f} s"
              + (f"; log {result.log}" if result.log else ""), flush=True)
        if result.status.startswith("failed") and result.log:
            tail = Path(result.log).read_text(errors="replace").splitlines()[-15:]
            print("    " + "\n    ".join(tail), flush=True)
        recorded = sorted(earlier + results, key=lambda r: names.index(r.name)
                          if r.name in names else len(names))
        write_json(out / "machine.json", dict(facts, quick=args.quick,
                                              steps=[asdict(r) for r in recorded]))
        write_text(out / "machine.md", machine_markdown(facts, recorded, args.quick))

    print(f"\nsummary ({time.time() - started:.0f} s, results in {out}):")
    for r in results:
        print(f"  {r.name:18} {r.status:12} {r.seconds:6.0f} s  {', '.join(r.written) or '-'}")
    print("  machine.json, machine.md: machine facts and these steps")
    if any(r.status.startswith("failed") for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
