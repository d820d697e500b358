"""Device side: run a converted classifier with ai-edge-litert, numpy and Pillow only.

Nothing under ``edgepose.runtime`` may import TensorFlow or Keras.
"""

from edgepose.runtime.classifier import Classification, Classifier
from edgepose.runtime.interpreter import load_interpreter
from edgepose.runtime.manifest import Manifest
from edgepose.runtime.preprocess import ImagePreprocessing, load_rgb

__all__ = [
    "Classification",
    "Classifier",
    "ImagePreprocessing",
    "Manifest",
    "load_interpreter",
    "load_rgb",
]
