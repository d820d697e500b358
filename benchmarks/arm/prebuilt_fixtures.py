"""pytest plugin for the emulated Pi: give the tests the fixture models the host built.

The guest has no TensorFlow, so it cannot build ``tests/tflite_models.py``'s tiny run
directory. ``ci_check.py`` builds it on the host with that module's own
``build_tiny_run`` and describes it in ``$EDGEPOSE_ARM_PREBUILT/tiny_run.json``; this
plugin (``pytest -p prebuilt_fixtures``) puts it in the module's session cache, so
the ``tiny_run`` fixture hands the same real models to the tests on ARM.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path


def pytest_configure(config) -> None:
    folder = os.environ.get("EDGEPOSE_ARM_PREBUILT")
    if not folder:
        return
    from tests import tflite_models

    fields = json.loads((Path(folder) / "tiny_run.json").read_text())
    values = {f.name: Path(fields[f.name]) if f.type in ("Path", Path) else fields[f.name]
              for f in dataclasses.fields(tflite_models.TinyRun)}
    tflite_models._BUILT["run"] = tflite_models.TinyRun(**values)


def build(folder: Path) -> None:
    """Host side: build the tiny run into ``folder`` and describe it in tiny_run.json."""
    from tests import tflite_models

    folder.mkdir(parents=True, exist_ok=True)
    built = tflite_models.build_tiny_run(folder)
    fields = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(built).items()}
    (folder / "tiny_run.json").write_text(json.dumps(fields, indent=2))
