"""What every benchmark script shares (in the spirit of pycoral's ``benchmark_utils.py``).

The scripts run as ``python benchmarks/<name>.py`` from a checkout, so this folder is
first on ``sys.path`` and ``import benchmark_utils`` finds this module; importing it
is the one path set-up: the checkout's root goes on ``sys.path``, so ``edgepose`` and
``tests`` import from this checkout. It also names where results go (one folder per
machine, :func:`results_dir`) and writes each result as JSON + Markdown
(:func:`write_results`). TensorFlow is not set up here: a script that needs it
imports it from :mod:`edgepose.keras_quiet`, which sets ``TF_CPP_MIN_LOG_LEVEL``.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def add_to_path(*folders: str) -> None:
    """Put checkout folders (e.g. ``"benchmarks"``) first on ``sys.path``, for scripts that
    import a sibling script by its bare name; test helpers are imported as ``tests.<module>``."""
    for folder in folders:
        path = str(ROOT / folder)
        if path not in sys.path:
            sys.path.insert(0, path)


def results_dir(out: str | Path | None = None, machine: str | None = None) -> Path:
    """``out`` when given, else ``benchmarks/results/<machine>/``.

    ``machine`` defaults to :func:`edgepose.bench.device.machine_slug` (e.g.
    ``x86_64-intel-xeon``): results of different machines never mix.
    """
    if out is not None:
        return Path(out)
    if machine is None:
        from edgepose.bench.device import machine_slug

        machine = machine_slug()
    return RESULTS / machine


def machine_facts(runtime: str) -> tuple[str, dict[str, Any]]:
    """``(machine slug, device facts)`` for a result record.

    ``runtime`` names what ran (e.g. ``"tensorflow"``); facts come from
    :func:`edgepose.bench.device.device_info`, or, when that cannot run here, the
    bare machine name and CPU count (the slug then from :mod:`platform`).
    """
    import dataclasses
    import os
    import platform

    try:
        from edgepose.bench.device import device_info, machine_slug

        return machine_slug(), dataclasses.asdict(device_info(runtime))
    except Exception:  # the bench package is optional for a host-only script
        slug = f"{platform.machine().lower()}-{platform.processor() or 'cpu'}"
        return slug, {"machine": platform.machine(), "cpus": os.cpu_count()}


def write_results(folder: str | Path, stem: str, record: Any, markdown: str) -> list[Path]:
    """Write ``<stem>.json`` (``record``: dataclasses, numpy values allowed) and
    ``<stem>.md`` into ``folder``, each atomically; return both paths."""
    from edgepose.fileio import write_json, write_text

    folder = Path(folder)
    return [write_json(folder / f"{stem}.json", record),
            write_text(folder / f"{stem}.md", markdown)]


def sample_rss(samples: list[float]) -> None:
    """Append this process's resident set size now (MiB, 2 decimals) to ``samples``.

    Nothing is appended where it cannot be read (``/proc/self/statm``: Linux only).
    """
    from edgepose.bench.device import current_rss_mb

    rss = current_rss_mb()
    if rss is not None:
        samples.append(round(rss, 2))


def rss_sampler(stop: threading.Event, samples: list[float], every_s: float = 1.0) -> None:
    """Sample the RSS into ``samples`` every ``every_s`` seconds until ``stop`` is set.

    A thread target: ``threading.Thread(target=rss_sampler, args=(stop, samples))``.
    """
    while not stop.wait(every_s):
        sample_rss(samples)
