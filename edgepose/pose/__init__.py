"""Device-side pose estimation (MediaPipe BlazePose through the TFLite interpreter).

numpy, Pillow and the interpreter only: the same code runs in the camera
service on the Pi. See :class:`PoseEstimator`.
"""

from edgepose.pose.estimator import PoseEstimator, PoseResult

__all__ = ["PoseEstimator", "PoseResult"]
