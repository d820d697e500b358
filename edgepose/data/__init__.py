"""Datasets: folders of images or keypoint files, their labels and their splits.

Device-safe: nothing here imports TensorFlow.
"""
