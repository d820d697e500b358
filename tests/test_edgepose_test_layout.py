"""The test suite's own layout: one naming scheme, fixtures registered one way.

Test modules are named ``test_<package>_<topic>.py`` after the package under test
(``edgepose`` for the top-level modules and the distribution as a whole), so a
change to ``edgepose/bench/`` is tested in ``tests/test_bench_*.py``. Shared
fixtures are registered once, in ``tests/conftest.py`` (``pytest_plugins``); a test
module names a fixture as an argument and never imports it, because an imported
fixture and a registered one can silently differ in scope.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
PACKAGES = ("arm", "bench", "cli", "converters", "data", "edgepose", "pose", "runtime",
            "service", "train")


def _fixture_names(module: Path) -> set[str]:
    """Names of the functions decorated with ``@pytest.fixture`` in ``module``."""
    names = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if ast.unparse(target) == "pytest.fixture":
                    names.add(node.name)
    return names


def test_every_test_module_is_named_after_its_package():
    misnamed = [m.name for m in TESTS.glob("test_*.py")
                if m.stem.split("_")[1] not in PACKAGES]
    assert misnamed == []
    # The packages named are real: each is a folder of edgepose (or edgepose itself).
    root = TESTS.parent
    for package in PACKAGES:
        folder = root / "converters" if package == "converters" else root / "edgepose" / package
        assert package == "edgepose" or folder.is_dir(), package


def test_shared_fixtures_are_registered_in_conftest_and_never_imported():
    conftest = (TESTS / "conftest.py").read_text()
    helpers = [m for m in TESTS.glob("*.py")
               if not m.name.startswith("test_") and m.name != "conftest.py" and _fixture_names(m)]
    assert helpers, "no shared fixture module found"
    for helper in helpers:
        assert f'"tests.{helper.stem}"' in conftest, f"{helper.name} is not in pytest_plugins"
    fixtures = set().union(*(_fixture_names(m) for m in helpers))
    for module in TESTS.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                imported = {alias.name for alias in node.names} & fixtures
                assert not imported, f"{module.name} imports fixture(s) {sorted(imported)}"
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute):
                assert node.value.attr not in fixtures, f"{module.name} aliases {node.value.attr}"
