"""Datasets: folders of images or keypoint files, their labels and their splits.

Dataset tooling (``images``, ``keypoints``, ``poses``, ``dedupe``, ``balance``,
``digits``) is host-side and never imported by the device side; ``splits`` is read
by the device side through the run directory. The per-sample contract (layouts,
the single-sample keypoint reader, presence) lives in :mod:`edgepose.runtime`.
Nothing here imports TensorFlow.
"""
