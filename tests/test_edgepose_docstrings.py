"""Public functions that raise say so: a "Raises" in the docstring of every one.

Walks ``edgepose/`` and ``converters/`` with :mod:`ast` (no import, so it runs on
the device side too). A function or method is public when neither it, its class
nor its module starts with an underscore; it raises when its own body (not a
nested function's) holds a ``raise`` with an exception (a bare re-raise passes
an error through, it does not make one).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edgepose", "converters")

Function = ast.FunctionDef | ast.AsyncFunctionDef


def _own_nodes(function: Function) -> Iterator[ast.AST]:
    """Every node of ``function``'s body, not descending into nested defs or classes."""
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        stack.extend(ast.iter_child_nodes(node))


def raises(function: Function) -> bool:
    """True when ``function`` itself raises an exception (a bare ``raise`` does not count)."""
    return any(isinstance(node, ast.Raise) and node.exc is not None
               for node in _own_nodes(function))


def public_functions(tree: ast.Module) -> Iterator[tuple[str, Function]]:
    """(qualified name, node) of module-level functions and methods of public classes."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not node.name.startswith("_"):
                yield node.name, node
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                        and not item.name.startswith("_"):
                    yield f"{node.name}.{item.name}", item


def offenders(source: str, where: str = "<string>") -> list[str]:
    """``where:line name`` of every public function that raises without saying so."""
    tree = ast.parse(source)
    found = []
    for name, function in public_functions(tree):
        doc = ast.get_docstring(function) or ""
        if raises(function) and "Raises" not in doc:
            found.append(f"{where}:{function.lineno} {name}")
    return found


def _modules() -> list[Path]:
    paths = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if any(part.startswith("_") and part != "__init__.py" for part in parts):
                continue  # a private module (or package) is not public API
            paths.append(path)
    return paths


def test_every_public_function_that_raises_says_what_and_why():
    found = [hit for path in _modules()
             for hit in offenders(path.read_text(encoding="utf-8"),
                                  str(path.relative_to(ROOT)))]
    assert found == [], "public functions that raise without a Raises section:\n" + \
        "\n".join(found)


def test_the_walk_covers_both_packages():
    modules = {path.relative_to(ROOT).parts[0] for path in _modules()}
    assert modules == set(PACKAGES)


@pytest.mark.parametrize(("source", "expected"), [
    # raises, no docstring at all
    ("def load(p):\n    raise ValueError(p)\n", ["<string>:1 load"]),
    # raises, docstring silent about it
    ('def load(p):\n    """Load p."""\n    if p:\n        raise ValueError(p)\n',
     ["<string>:1 load"]),
    # a public method of a public class
    ('class Box:\n    def open(self):\n        """Open."""\n        raise OSError("shut")\n',
     ["<string>:2 Box.open"]),
    # raise ... from inside an except
    ('def parse(t):\n    """Parse."""\n    try:\n        return int(t)\n'
     '    except ValueError as e:\n        raise KeyError(t) from e\n', ["<string>:1 parse"]),
])
def test_an_unannounced_raise_is_found(source, expected):
    assert offenders(source) == expected


@pytest.mark.parametrize("source", [
    # says so
    ('def load(p):\n    """Load p.\n\n    Raises:\n        ValueError: p is empty.\n    """\n'
     '    raise ValueError(p)\n'),
    # prose form
    'def load(p):\n    """Load p. Raises ValueError for an empty p."""\n    raise ValueError(p)\n',
    # a bare re-raise only passes an error on
    'def load(p):\n    """Load p."""\n    try:\n        return p()\n    except OSError:\n'
    '        raise\n',
    # private function, private class, dunder method
    'def _load(p):\n    raise ValueError(p)\n',
    'class _Box:\n    def open(self):\n        raise OSError\n',
    'class Box:\n    def __init__(self):\n        raise OSError\n',
    # the raise belongs to a nested function, not to the public one
    'def outer():\n    """Make a checker."""\n    def check(x):\n        raise ValueError(x)\n'
    '    return check\n',
])
def test_announced_private_or_passed_on_raises_are_not_offenders(source):
    assert offenders(source) == []
