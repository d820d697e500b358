"""In-graph keypoint layers: normalisation (saved with the model) and augmentation (training only).

The normalisation is part of ``model.keras`` and of every TFLite export, so
the Pi feeds raw keypoint vectors and can never normalise differently. It is
built for full-integer TFLite and the XNNPACK delegate:

- Picking joints (x, y, visibility, hip or shoulder pairs) is a product with a
  constant 0/1 matrix (one FULLY_CONNECTED op), never tensor slicing: XNNPACK
  leaves STRIDED_SLICE on the builtin kernels.
- Clamps are fused activations (``relu``, ``relu6`` of a product), not
  MINIMUM/MAXIMUM, which XNNPACK does not run in int8.
- Centres of a joint pair are affine blends of the two joints weighted by
  presence, so no division by a joint count (whose int8 value can be exactly
  the zero point when both joints are missing: a DIV that fails at invoke).
- The scale is one ``rsqrt`` of the squared body size plus a floor, so the only
  divisor-like op has a strictly positive input.

Missing joints get weight 0: a visibility under ~0.5 in 4-channel layouts,
``x = y = 0`` in 2-channel layouts. Weights are smooth ramps rather than
comparisons so the graph quantizes to int8 without casts.

The normalisation is a functional sub-model of ``keras.ops`` calls, so any
``keras.saving.load_model`` reads it back without registering a custom class;
the augmentation layer is a custom class that never reaches the saved model.
"""

from __future__ import annotations

import math

import numpy as np

from edgepose.keras_quiet import keras, ops
from edgepose.runtime.layouts import KeypointLayout

NORMALIZATIONS = ("body", "zscore", "none")
EPS = 1e-6
# Lower bound of the squared body size (in units of the coordinate unit): keeps rsqrt's
# input positive. It is added to the torso term, so it must be tiny next to any real
# body (0.001 wide: under a pixel of a 640 px image); 1e-4 shifted the size of a body
# a quarter of the image tall by 0.1%, visible as 3e-4 in the probabilities of a
# translated and scaled pose.
MIN_SIZE_SQUARED = 1e-6
# A missing joint sits this far below every present one when looking for the extremes.
_MISSING_OFFSET = 2.0


def _joint_weights(points, num_channels: int):
    """0..1 weight per joint of ``(..., joints, channels)`` points: 1 = present, 0 = missing."""
    if num_channels >= 4:
        # visibility 0.3 -> 0, 0.7 -> 1
        return ops.clip((points[..., 3] - 0.3) * 2.5, 0.0, 1.0)
    # exactly (0, 0) means "not found"; any real coordinate is far above 1e-3
    magnitude = ops.abs(points[..., 0]) + ops.abs(points[..., 1])
    return ops.minimum(magnitude * 1000.0, 1.0)


def _picker(size: int, rows: list[tuple[int, float]] | list[list[tuple[int, float]]]):
    """Constant ``size x len(rows)`` matrix: column k sums ``weight * input[index]``."""
    matrix = np.zeros((size, len(rows)), dtype=np.float32)
    for k, terms in enumerate(rows):
        for index, weight in ([terms] if isinstance(terms, tuple) else terms):
            matrix[index, k] += weight
    return matrix


def _clip01(x):
    """``clip(x, 0, 1)`` as a relu6 fused into the multiply that precedes it."""
    return ops.relu6(x * 6.0) * (1.0 / 6.0)


def _flat_weights(inputs, num_joints: int, num_channels: int, unit: float = 1.0):
    """Per-joint presence weights (batch x joints) from the flat vector, builtin ops only.

    ``unit``: one coordinate unit in the input's units (see :func:`normalize_keypoints`).
    """
    size = num_joints * num_channels
    if num_channels >= 4:
        vis = ops.matmul(inputs, _picker(size, [(j * num_channels + 3, 2.5)
                                                for j in range(num_joints)]))
        return _clip01(vis - 0.75)  # (visibility - 0.3) * 2.5
    # |x| + |y| = relu(x) + relu(-x) + relu(y) + relu(-y)
    signed = [(j * num_channels + c, sign / unit) for sign in (1.0, -1.0) for c in (0, 1)
              for j in range(num_joints)]
    parts = ops.relu(ops.matmul(inputs, _picker(size, signed)))
    magnitude = ops.matmul(parts, _picker(4 * num_joints, [
        [(j + k * num_joints, 1000.0) for k in range(4)] for j in range(num_joints)]))
    return _clip01(magnitude)


def _body_normalize(inputs, num_joints: int, num_channels: int, hips: tuple[int, int],
                    shoulders: tuple[int, int], torso_multiplier: float, unit: float = 1.0):
    n, c = num_joints, num_channels
    size = n * c
    # coordinates as [x_0 .. x_n-1, y_0 .. y_n-1], in units of ``unit`` (folded into the
    # picking product, so pixel inputs cost no extra op)
    coords = ops.matmul(inputs, _picker(size, [(j * c, 1.0 / unit) for j in range(n)]
                                        + [(j * c + 1, 1.0 / unit) for j in range(n)]))
    w = _flat_weights(inputs, n, c, unit)
    w2 = ops.matmul(w, _picker(n, [(j, 1.0) for j in range(n)] * 2))

    # Fallback centre: middle of the present joints' bounding box (max of x, y, -x, -y).
    shifted = ops.matmul(ops.concatenate([coords, w2], axis=-1), _picker(4 * n, [
        [(k, 1.0), (2 * n + k, _MISSING_OFFSET)] for k in range(2 * n)]
        + [[(k, -1.0), (2 * n + k, _MISSING_OFFSET)] for k in range(2 * n)]))
    # (each extreme is off by _MISSING_OFFSET, which cancels in max x - max(-x))
    extremes = ops.max(ops.reshape(shifted, (-1, 4, n)), axis=-1)

    # Hip and shoulder centres in one go: an affine blend of joint a, joint b and the
    # fallback with coefficients that always sum to 1 (both present -> midpoint, one ->
    # that joint, none -> fallback). Candidates and coefficients are each one tensor, so
    # the int8 range of a coefficient that calibration never sees non-zero is still 0..1.
    pairs = (hips, shoulders)
    half_box = [[(k, 0.5), (2 + k, -0.5)] for k in range(2)]  # of the 4 extremes
    candidates = ops.matmul(ops.concatenate([coords, extremes], axis=-1), _picker(2 * n + 4, [
        terms for pair in pairs
        for terms in [(pair[0], 1.0), (n + pair[0], 1.0), (pair[1], 1.0), (n + pair[1], 1.0)]]
        + [[(2 * n + t, v) for t, v in terms] for _ in pairs for terms in half_box]))
    presence = ops.matmul(w, _picker(n, [(j, 1.0) for pair in pairs for j in pair]))
    both = presence * ops.matmul(presence, _picker(4, [(1, 1.0), (0, 1.0), (3, 1.0),
                                                       (2, 1.0)]))
    # columns of ``candidates``: hip a x, y, hip b x, y, shoulder a x, y, b x, y, box x, y x 2
    coefficients = ops.matmul(ops.concatenate([presence, both], axis=-1), _picker(8, [
        [(2 * p + side, 1.0), (4 + 2 * p, -0.5)] for p in range(2) for side in (0, 1)
        for _ in range(2)] + [[(2 * p, -1.0), (2 * p + 1, -1.0), (4 + 2 * p, 1.0)]
                              for p in range(2) for _ in range(2)])) + np.array(
        [0.0] * 8 + [1.0] * 4, dtype=np.float32)
    # hip x, hip y, shoulder x, shoulder y
    centres = ops.matmul(candidates * coefficients, _picker(12, [
        [(4 * p + xy, 1.0), (4 * p + 2 + xy, 1.0), (8 + 2 * p + xy, 1.0)]
        for p in range(2) for xy in range(2)]))
    hip = ops.matmul(centres, _picker(4, [(0, 1.0), (1, 1.0)]))
    delta = ops.matmul(centres, _picker(4, [[(2, 1.0), (0, -1.0)], [(3, 1.0), (1, -1.0)]]))
    spread = _picker(2, [(0, 1.0)] * n + [(1, 1.0)] * n)
    offsets = (coords - ops.matmul(hip, spread)) * w2
    dist_squared = ops.matmul(offsets * offsets, _picker(2 * n, [
        [(j, 1.0), (n + j, 1.0)] for j in range(n)]))
    # (multiplier x torso)^2 plus the floor, as one product with a bias
    torso_squared = ops.matmul(delta * delta, np.full((2, 1), torso_multiplier ** 2,
                                                      dtype=np.float32)) + MIN_SIZE_SQUARED
    size_squared = ops.max(ops.concatenate([torso_squared, dist_squared], axis=-1), axis=-1,
                           keepdims=True)
    scale = ops.rsqrt(size_squared)

    # back to the layout's order: x, y, z (scaled like x, y), visibility (unchanged)
    order = [(j * c, 1.0) for j in range(n)] + [(j * c + 1, 1.0) for j in range(n)]
    scaled = offsets
    if c >= 4:
        z = ops.matmul(inputs, _picker(size, [(j * c + 2, 1.0 / unit) for j in range(n)])) * w
        scaled = ops.concatenate([offsets, z], axis=-1)
        order += [(j * c + 2, 1.0) for j in range(n)]
    place = np.zeros((len(order), size), dtype=np.float32)
    for k, (index, _) in enumerate(order):
        place[k, index] = 1.0
    out = ops.matmul(scaled, place) * scale
    if c >= 4:
        out = out + ops.matmul(inputs, _picker(size, [
            (j * c + 3, 1.0) if k % c == 3 else [] for j in range(n) for k in range(c)]))
    return out


def normalize_keypoints(inputs, num_joints: int, num_channels: int, hips: tuple[int, int],
                        shoulders: tuple[int, int], method: str = "body",
                        torso_multiplier: float = 2.5, unit: float = 1.0):
    """Flat keypoint vectors -> pose features independent of where and how big the body is.

    ``body``: subtract the hip centre and divide by the body size, the larger
    of 2.5 x torso length (hip centre to shoulder centre) and the farthest
    present joint from the hips; a missing hip or shoulder falls back to the
    other one of its pair, both missing to the middle of the present joints'
    bounding box. Missing joints become 0. z (if any) is divided by the same
    size; visibility passes through. ``zscore``: subtract the vector's mean,
    divide by its standard deviation. ``none``: x, y, z divided by ``unit`` only.
    Works on tensors and on symbolic Keras tensors (keras.ops only).

    ``unit`` is one coordinate unit in the input's units: 1 for coordinates
    normalised 0..1 to the image, e.g. 512 for pixel coordinates of a 480 x 640
    image (:func:`coordinate_unit`). The body features do not depend on it; the
    constants that do (a joint at exactly (0, 0) is missing, the size floor, the
    offset of missing joints) are written for 0..1 coordinates, and int8 keeps
    its precision only when the intermediate tensors are of order 1: with pixel
    inputs and ``unit = 1`` the presence product (x 1000) reaches ~10^6, and
    XNNPACK failed to prepare the int8 graph (0 of 36 nodes delegated).
    Dividing by the unit is folded into the first (picking) products, so it
    costs no op.

    Raises:
        ValueError: an unknown ``method``, or ``unit`` not a positive number.
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, not {method!r}")
    if unit <= 0 or not math.isfinite(unit):
        raise ValueError(f"unit must be a positive number, not {unit!r}")
    if method == "none":
        if unit == 1.0:
            return inputs
        channel_scale = np.ones(num_channels, dtype=np.float32)
        channel_scale[: min(num_channels, 3)] = 1.0 / unit  # x, y, z; not visibility
        return inputs * np.tile(channel_scale, num_joints)
    if method == "zscore":
        centred = inputs - ops.mean(inputs, axis=-1, keepdims=True)
        # the variance as a product with a bias: a separate ``+ EPS`` is an int8 ADD whose
        # tiny constant scale XNNPACK refuses
        size = num_joints * num_channels
        variance = ops.matmul(centred * centred, np.full((size, 1), 1.0 / size,
                                                         dtype=np.float32)) + EPS
        return centred * ops.rsqrt(variance)
    return _body_normalize(inputs, num_joints, num_channels, hips, shoulders, torso_multiplier,
                           unit)


def coordinate_unit(vectors: np.ndarray, layout: KeypointLayout) -> float:
    """One coordinate unit of a dataset: 1 for 0..1 coordinates, else a power of two >= max.

    ``vectors`` is ``n x layout.size``. Coordinates normalised to the image
    stay within about -0.5..1.5 (a joint may lie just outside the frame), so a
    largest |x| or |y| up to 2 means "normalised"; beyond it the coordinates
    are taken as pixels and the unit is the next power of two of the largest
    (e.g. 470 px -> 512), which brings every coordinate back to order 1.
    """
    points = layout.reshape(np.asarray(vectors, dtype=np.float64))[..., :2]
    largest = float(np.max(np.abs(points))) if points.size else 0.0
    if not math.isfinite(largest) or largest <= 2.0:
        return 1.0
    return float(2 ** math.ceil(math.log2(largest)))


def normalization_model(layout: KeypointLayout, method: str = "body",
                        name: str = "normalization", unit: float = 1.0) -> keras.Model:
    """The normalisation as a functional sub-model of builtin Keras ops.

    Built from ``keras.ops`` calls on symbolic tensors, it saves and loads with
    any ``keras.saving.load_model`` (no custom class to register) and converts
    to builtin TFLite ops.
    """
    inputs = keras.Input((layout.size,), name=f"{name}_input")
    outputs = normalize_keypoints(inputs, layout.num_joints, layout.num_channels, layout.hips,
                                  layout.shoulders, method, unit=unit)
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
    and the trainer keeps it out of the saved model altogether. ``unit`` is one
    coordinate unit in the data's units (1 for 0..1, e.g. 512 for pixels): the
    mirror is ``x -> unit - x`` and the jitter ``jitter x unit``.
    """

    def __init__(self, num_joints: int, num_channels: int, permutation: list[int],
                 mirror: float = 0.5, rotation: float = 5.0, scale: float = 0.1,
                 jitter: float = 0.005, seed: int | None = None, unit: float = 1.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.unit = float(unit)
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
            mirrored_xy = ops.concatenate([(self.unit - xy[..., 0:1]) * present, xy[..., 1:2]],
                                          -1)
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
            noise = keras.random.normal(ops.shape(xy), stddev=self.jitter * self.unit,
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
                "jitter": self.jitter, "seed": self.seed, "unit": self.unit}
