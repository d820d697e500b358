"""TensorFlow and Keras for host-side modules, imported quietly (host side only).

``from edgepose.keras_quiet import keras, tf`` is how host-side code (``edgepose.train``,
``edgepose.converters``) gets TensorFlow: importing this module is the one place that
loads it, through :func:`edgepose.quiet.import_tensorflow` (which also sets
``TF_CPP_MIN_LOG_LEVEL``), so its start-up banner never reaches the terminal. Package
``__init__`` files do not import it: reading the mode table or the hyperparameters
costs no TensorFlow. The device side never imports this module
(tests/test_edgepose_no_tensorflow.py, tests/test_edgepose_import_direction.py).
"""

from edgepose.quiet import import_tensorflow

tf = import_tensorflow()

import keras  # noqa: E402  (already loaded, quietly, by the call above)
from keras import ops  # noqa: E402

__all__ = ["keras", "ops", "tf"]
