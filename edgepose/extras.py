"""The optional ``train`` extra: which modules it installs and the hint when one is missing.

A device install (``pip install`` of the wheel, no extras) has no TensorFlow,
Keras, scikit-learn or matplotlib. Host-side commands check for what they need
before starting and say, in one line, how to install it; the hint is worded
once here so every command (and :mod:`edgepose.data.digits`) gives the same one.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

# Import name -> the distribution the train extra installs (pyproject.toml).
TRAIN_EXTRA_MODULES = {
    "tensorflow": "tensorflow",
    "keras": "keras",
    "sklearn": "scikit-learn",
    "matplotlib": "matplotlib",
    "imagehash": "imagehash",
    "tensorboard": "tensorboard",
}

# No registry serves edgepose, so the hint names the command that works from a checkout.
INSTALL_TRAIN = "install edgepose[train] (in the edgepose checkout: pip install '.[train]')"


def train_extra_hint(what: str, modules: Iterable[str]) -> str:
    """One line: ``what`` needs these train-extra modules and how to install them.

    ``modules`` are import names (``sklearn``); the hint shows distribution names
    (``scikit-learn``).
    """
    names = ", ".join(TRAIN_EXTRA_MODULES.get(m, m) for m in modules)
    return f"{what} runs on the workstation and needs {names}: {INSTALL_TRAIN}"


def missing_modules(modules: Iterable[str]) -> list[str]:
    """The import names in ``modules`` that are not installed (found without importing)."""
    return [m for m in modules if not _installed(m)]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked import, or a broken module in sys.modules
        return False
