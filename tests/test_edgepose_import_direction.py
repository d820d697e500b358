"""One-way flow: the device side imports only the device contract, and importing
a package has no side effects.

Device side: ``edgepose.runtime``, ``edgepose.bench``, ``edgepose.service``,
``edgepose.pose``. They may import each other and a short list of shared modules
(errors, atomic file writes, sampling, the run directory and its splits); never
dataset tooling (``edgepose.data.images``, ``dedupe``, ``poses``),
``edgepose.train``, ``edgepose.converters``, the CLI, or TensorFlow. Method: a
static AST scan of every module's imports, function-level ones included, followed
through the shared modules (a shared module that imported training would leak it
in). tests/test_edgepose_no_tensorflow.py checks the same at run time for two commands.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
DEVICE_PACKAGES = ("edgepose.runtime", "edgepose.bench", "edgepose.service", "edgepose.pose")
# Shared modules the device side may import (each scanned in turn, so its own imports count).
SHARED = ("edgepose", "edgepose.errors", "edgepose.fileio", "edgepose.sampling",
          "edgepose.rundir", "edgepose.data", "edgepose.data.splits")
THIRD_PARTY_FORBIDDEN = ("tensorflow", "keras", "tf_keras", "tflite_runtime", "sklearn",
                         "imagehash", "converters")  # matplotlib: bench --plot, lazily


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    if parts[:2] == ["edgepose", "converters"]:
        base = ROOT / "converters" / Path(*parts[2:]) if parts[2:] else ROOT / "converters"
    elif parts[0] == "edgepose":
        base = ROOT / Path(*parts)
    else:
        return None
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_names(path: Path, package: str) -> set[str]:
    """Every module named by an import anywhere in ``path`` (function bodies too).

    ``from a import b`` yields ``a`` and, when ``a.b`` is a module, ``a.b``; relative
    imports are resolved against ``package``.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            for alias in node.names:
                if _module_file(f"{base}.{alias.name}") is not None:
                    names.add(f"{base}.{alias.name}")
    return names


def _modules_of(package: str) -> dict[str, Path]:
    folder = ROOT / Path(*package.split("."))
    found = {}
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_device(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in DEVICE_PACKAGES)


def direction_violations(modules: dict[str, Path]) -> list[str]:
    """``"importer -> imported"`` for every import the one-way rule forbids.

    ``modules``: module name -> file, the device-side modules to start from; shared
    modules they import are scanned too.
    """
    todo = dict(modules)
    seen: set[str] = set()
    bad = []
    while todo:
        name, path = todo.popitem()
        seen.add(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in sorted(imported_names(path, package)):
            top = imported.split(".")[0]
            if top in THIRD_PARTY_FORBIDDEN:
                bad.append(f"{name} -> {imported}")
            elif top != "edgepose":
                continue
            elif _is_device(imported) or imported in SHARED:
                target = _module_file(imported)
                if target is not None and imported not in seen:
                    todo[imported] = target
            else:
                bad.append(f"{name} -> {imported}")
    return sorted(set(bad))


def _device_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in DEVICE_PACKAGES:
        modules.update(_modules_of(package))
    return modules


def test_the_device_side_imports_only_the_device_contract():
    modules = _device_modules()
    assert len(modules) > 40  # the scan really found the device side
    assert direction_violations(modules) == []


@pytest.mark.parametrize("source, expected", [
    # dataset tooling, training and the converters, at module or function level
    ("from edgepose.data.images import list_images\n", "edgepose.data.images"),
    ("def f():\n    from edgepose.data import dedupe\n", "edgepose.data.dedupe"),
    ("import edgepose.data.poses\n", "edgepose.data.poses"),
    ("def f():\n    from edgepose.train.training import fit\n", "edgepose.train.training"),
    ("from edgepose.converters.modes import MODES\n", "edgepose.converters.modes"),
    ("import converters\n", "converters"),
    ("def f():\n    import keras\n", "keras"),
    ("from edgepose.cli import main\n", "edgepose.cli"),
    ("from edgepose.quiet import import_tensorflow\n", "edgepose.quiet"),
])
def test_the_scan_catches_each_kind_of_wrong_import(tmp_path, source, expected):
    bad = tmp_path / "bad.py"
    bad.write_text(source, encoding="utf-8")
    assert direction_violations({"edgepose.runtime.bad": bad}) == [
        f"edgepose.runtime.bad -> {expected}"]


def test_the_scan_follows_shared_modules_and_relative_imports(tmp_path):
    relative = tmp_path / "rel.py"
    relative.write_text("from ..train import trainer_steps\nfrom . import classifier\n",
                        encoding="utf-8")
    assert direction_violations({"edgepose.runtime.rel": relative}) == [
        "edgepose.runtime.rel -> edgepose.train",
        "edgepose.runtime.rel -> edgepose.train.trainer_steps"]


def test_no_module_imports_the_top_level_converters_name():
    """``converters`` is installed as ``edgepose.converters`` only."""
    offenders = []
    for folder in ("edgepose", "converters", "benchmarks", "tests", "models"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            names = imported_names(path, "edgepose")
            if any(n.split(".")[0] == "converters" for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_pyproject_lists_every_package_folder():
    """The wheel's explicit package list (needed for the converters mapping) misses none."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    listed = set(config["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts)
               for p in (ROOT / "edgepose").rglob("__init__.py")}
    assert listed == folders | {"edgepose.converters"}
    assert config["setuptools"]["package-dir"] == {"edgepose.converters": "converters"}


@pytest.mark.parametrize("module", ["edgepose.converters", "edgepose.converters.modes",
                                    "edgepose.converters.conversion_report", "edgepose.train",
                                    "edgepose.train.hyperparameters", "edgepose.cli"])
def test_importing_a_package_or_the_mode_table_loads_no_tensorflow(module):
    code = (f"import sys, {module}\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert done.stderr == ""


def test_the_lazy_converters_package_still_exports_its_names():
    import importlib

    import edgepose.converters as converters_package
    from edgepose.converters.convert import convert_run
    from edgepose.converters.modes import DEFAULT_MODES

    assert converters_package.convert_run is convert_run
    assert converters_package.DEFAULT_MODES == DEFAULT_MODES
    for name, module in converters_package._LAZY.items():  # every name, from its own module
        assert getattr(converters_package, name) is getattr(
            importlib.import_module(f"edgepose.converters.{module}"), name)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        converters_package.nope  # noqa: B018
