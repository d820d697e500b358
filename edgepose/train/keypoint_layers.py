"""In-graph keypoint layers: normalisation (saved with the model) and augmentation (training only).

The normalisation is part of ``model.keras`` and of every TFLite export, so
the Pi feeds raw keypoint vectors and can never normalise differently. It uses
only element-wise arithmetic, sums, maxima and a square root, which convert to
builtin TFLite ops. Missing joints get weight 0: a visibility under ~0.5 in
4-channel layouts, ``x = y = 0`` in 2-channel layouts. Weights are smooth
ramps rather than comparisons so the graph quantizes to int8 without casts.

The normalisation is a functional sub-model of ``keras.ops`` calls, so any
``keras.saving.load_model`` reads it back without registering a custom class;
the augmentation layer is a custom class that never reaches the saved model.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from edgepose.data.layouts import KeypointLayout

NORMALIZATIONS = ("body", "zscore", "none")
EPS = 1e-6


def _joint_weights(points, num_channels: int):
    """0..1 weight per joint: 1 = present, 0 = missing."""
    if num_channels >= 4:
        # visibility 0.3 -> 0, 0.7 -> 1
        return ops.clip((points[..., 3] - 0.3) * 2.5, 0.0, 1.0)
    # exactly (0, 0) means "not found"; any real coordinate is far above 1e-3
    magnitude = ops.abs(points[..., 0]) + ops.abs(points[..., 1])
    return ops.minimum(magnitude * 1000.0, 1.0)


def _centre(xy, w, pair, fallback):
    """Weighted mean of a joint pair; the ``fallback`` point when both are missing."""
    a, b = pair
    wa, wb = w[:, a:a + 1], w[:, b:b + 1]
    total = wa + wb
    centre = (xy[:, a] * wa + xy[:, b] * wb) / (total + EPS)
    trust = ops.minimum(total, 1.0)
    return centre * trust + fallback * (1.0 - trust)


def normalize_keypoints(inputs, num_joints: int, num_channels: int, hips: tuple[int, int],
                        shoulders: tuple[int, int], method: str = "body",
                        torso_multiplier: float = 2.5):
    """Flat keypoint vectors -> pose features independent of where and how big the body is.

    ``body``: subtract the hip centre and divide by the body size, the larger
    of 2.5 x torso length (hip centre to shoulder centre) and the farthest
    present joint from the hips; a missing hip or shoulder falls back to the
    mean of the present joints. Missing joints become 0. z (if any) is divided
    by the same size; visibility passes through. ``zscore``: subtract the
    vector's mean, divide by its standard deviation. ``none``: identity.
    Works on tensors and on symbolic Keras tensors (keras.ops only).
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, not {method!r}")
    if method == "none":
        return inputs
    if method == "zscore":
        mean = ops.mean(inputs, axis=-1, keepdims=True)
        centred = inputs - mean
        std = ops.sqrt(ops.mean(centred * centred, axis=-1, keepdims=True) + EPS)
        return centred / std
    points = ops.reshape(inputs, (-1, num_joints, num_channels))
    xy = points[..., 0:2]
    w = _joint_weights(points, num_channels)
    w3 = ops.expand_dims(w, -1)
    mean_all = ops.sum(xy * w3, axis=1) / (ops.sum(w3, axis=1) + EPS)
    hip = _centre(xy, w, hips, mean_all)
    shoulder = _centre(xy, w, shoulders, mean_all)
    delta = shoulder - hip
    torso = ops.sqrt(ops.sum(delta * delta, axis=-1, keepdims=True) + EPS)
    offsets = xy - ops.expand_dims(hip, 1)
    dist = ops.sqrt(ops.sum(offsets * offsets, axis=-1) + EPS) * w
    size = ops.maximum(torso * torso_multiplier, ops.max(dist, axis=-1, keepdims=True))
    scale = ops.expand_dims(1.0 / ops.maximum(size, 1e-3), 1)
    features = [offsets * scale * w3]
    if num_channels >= 4:
        features.append(points[..., 2:3] * scale * w3)
        features.append(points[..., 3:])
    out = ops.concatenate(features, axis=-1) if len(features) > 1 else features[0]
    return ops.reshape(out, (-1, num_joints * num_channels))


def normalization_model(layout: KeypointLayout, method: str = "body",
                        name: str = "normalization") -> keras.Model:
    """The normalisation as a functional sub-model of builtin Keras ops.

    Built from ``keras.ops`` calls on symbolic tensors, it saves and loads with
    any ``keras.saving.load_model`` (no custom class to register) and converts
    to builtin TFLite ops.
    """
    inputs = keras.Input((layout.size,), name=f"{name}_input")
    outputs = normalize_keypoints(inputs, layout.num_joints, layout.num_channels, layout.hips,
                                  layout.shoulders, method)
    if outputs is inputs:
        outputs = keras.layers.Identity(name=f"{name}_identity")(inputs)
    return keras.Model(inputs, outputs, name=name)


@keras.saving.register_keras_serializable(package="edgepose")
class KeypointAugmentation(keras.layers.Layer):
    """Random left/right mirror, rotation, scaling and jitter of raw keypoints (training only).

    Mirroring flips x (``x -> 1 - x``) and swaps every left/right joint pair;
    rotation (+-``rotation`` degrees) and scaling (1 +- ``scale``) turn the body
    about the mean of its present joints; jitter adds N(0, ``jitter``) to each
    present joint. Missing joints stay missing. At inference it is the identity,
    and the trainer keeps it out of the saved model altogether.
    """

    def __init__(self, num_joints: int, num_channels: int, permutation: list[int],
                 mirror: float = 0.5, rotation: float = 5.0, scale: float = 0.1,
                 jitter: float = 0.005, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.num_joints = int(num_joints)
        self.num_channels = int(num_channels)
        self.permutation = [int(i) for i in permutation]
        self.mirror = float(mirror)
        self.rotation = float(rotation)
        self.scale = float(scale)
        self.jitter = float(jitter)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @classmethod
    def for_layout(cls, layout: KeypointLayout, **kwargs) -> KeypointAugmentation:
        return cls(layout.num_joints, layout.num_channels, list(layout.mirror_permutation),
                   name=kwargs.pop("name", "augmentation"), **kwargs)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        points = ops.reshape(inputs, (-1, self.num_joints, self.num_channels))
        batch = ops.shape(points)[0]
        w = ops.expand_dims(_joint_weights(points, self.num_channels), -1)
        present = ops.cast(w > 0, inputs.dtype)
        xy, rest = points[..., 0:2], points[..., 2:]
        if self.mirror > 0:
            flip = ops.cast(keras.random.uniform((batch, 1, 1), seed=self.seed_generator)
                            < self.mirror, inputs.dtype)
            mirrored_xy = ops.concatenate([(1.0 - xy[..., 0:1]) * present, xy[..., 1:2]], -1)
            mirrored = ops.take(ops.concatenate([mirrored_xy, rest], -1), self.permutation,
                                axis=1)
            points = mirrored * flip + points * (1.0 - flip)
            w = ops.take(w, self.permutation, axis=1) * flip + w * (1.0 - flip)
            present = ops.cast(w > 0, inputs.dtype)
            xy, rest = points[..., 0:2], points[..., 2:]
        if self.rotation > 0 or self.scale > 0:
            centre = ops.sum(xy * present, axis=1, keepdims=True) / (
                ops.sum(present, axis=1, keepdims=True) + EPS)
            angle = keras.random.uniform((batch, 1), -1.0, 1.0, seed=self.seed_generator)
            angle = angle * (self.rotation * math.pi / 180.0)
            factor = 1.0 + self.scale * keras.random.uniform((batch, 1), -1.0, 1.0,
                                                             seed=self.seed_generator)
            cos, sin = ops.cos(angle) * factor, ops.sin(angle) * factor
            d = xy - centre
            dx, dy = d[..., 0], d[..., 1]
            turned = ops.stack([cos * dx - sin * dy, sin * dx + cos * dy], axis=-1)
            xy = (centre + turned) * present
            if self.num_channels >= 4:
                rest = ops.concatenate([rest[..., 0:1] * ops.expand_dims(factor, -1),
                                        rest[..., 1:]], -1)
        if self.jitter > 0:
            noise = keras.random.normal(ops.shape(xy), stddev=self.jitter,
                                        seed=self.seed_generator)
            xy = xy + noise * present
        out = ops.concatenate([xy, rest], -1) if self.num_channels > 2 else xy
        return ops.reshape(out, (-1, self.num_joints * self.num_channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "num_joints": self.num_joints,
                "num_channels": self.num_channels, "permutation": self.permutation,
                "mirror": self.mirror, "rotation": self.rotation, "scale": self.scale,
                "jitter": self.jitter, "seed": self.seed}
