"""edgepose: small image and pose-keypoint classifiers, from a folder of examples to a Raspberry Pi.

The host side (``edgepose.train``, ``edgepose.converters``) may import TensorFlow,
only where it is used, through :mod:`edgepose.quiet`. The device side
(``edgepose.runtime``, ``edgepose.bench``, ``edgepose.service``, ``edgepose.pose``)
never does: it runs with ai-edge-litert, numpy and Pillow only, and imports no
dataset tooling, training or converter code (tests/test_edgepose_import_direction.py).

``edgepose.converters`` lives in the repository's top-level ``converters/``
folder; an install (wheel or editable) maps it under ``edgepose`` through
``pyproject.toml``'s ``package-dir``. When ``edgepose`` is imported straight
from a source checkout on ``sys.path`` (``PYTHONPATH=.``), the finder below
gives the same mapping, for that one name only.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"

_CHECKOUT_CONVERTERS = Path(__file__).resolve().parent.parent / "converters"


class _CheckoutConvertersFinder(importlib.abc.MetaPathFinder):
    """Find ``edgepose.converters`` in a source checkout's sibling ``converters/`` folder.

    Only that one package name; its submodules are then found by the normal
    path finder through the package's ``__path__``.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "edgepose.converters":
            return None
        return importlib.util.spec_from_file_location(
            fullname, _CHECKOUT_CONVERTERS / "__init__.py",
            submodule_search_locations=[str(_CHECKOUT_CONVERTERS)])


# In a wheel edgepose/converters/ exists and nothing is added; in a checkout the
# folder is a sibling (an editable install's own finder would also map it, but only
# for the checkout it was installed from).
if (not (Path(__file__).resolve().parent / "converters").is_dir()
        and (_CHECKOUT_CONVERTERS / "__init__.py").is_file()
        and not any(isinstance(f, _CheckoutConvertersFinder) for f in sys.meta_path)):
    sys.meta_path.insert(0, _CheckoutConvertersFinder())
