"""edgepose: small image and pose-keypoint classifiers, from a folder of examples to a Raspberry Pi.

The host side (``edgepose.train``, ``converters``) may import TensorFlow.
The device side (``edgepose.runtime``, ``edgepose.bench``, ``edgepose.service``)
never does: it runs with ai-edge-litert, numpy and Pillow only.
"""

__version__ = "0.1.0"
