"""The in-memory training input pipeline (:func:`edgepose.train.training.make_batches`).

Speed itself is measured by benchmarks/train_throughput.py (ratios, never timed
tests); here: the fast path feeds exactly what the slow one did.
"""

from __future__ import annotations

import numpy as np

from edgepose.train.training import BatchSequence, make_batches


def _epoch(batches) -> list[tuple]:
    return [tuple(np.asarray(part) for part in batch) for batch in batches.data]


def _images(n: int) -> np.ndarray:
    # image i is filled with the value i: a batch's images name its samples
    return np.repeat(np.arange(n, dtype=np.uint8), 2 * 2 * 3).reshape(n, 2, 2, 3)


def test_in_memory_batches_are_float32_images_with_their_labels():
    labels = np.array([0, 1, 2, 0, 1, 2, 0])
    (x, y), *_ = _epoch(make_batches(_images(7), labels, 4))
    assert x.dtype == np.float32 and x.shape == (4, 2, 2, 3)
    assert x[:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert y.tolist() == [0, 1, 2, 0]


def test_every_sample_once_per_epoch_in_a_new_seeded_order_each_epoch():
    labels = np.arange(10) % 2
    batches = make_batches(_images(10), labels, 3, shuffle=True, seed=5)
    first = np.concatenate([b[0][:, 0, 0, 0] for b in _epoch(batches)]).astype(int)
    second = np.concatenate([b[0][:, 0, 0, 0] for b in _epoch(batches)]).astype(int)
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert first.tolist() != second.tolist()
    again = make_batches(_images(10), labels, 3, shuffle=True, seed=5)
    assert np.concatenate([b[0][:, 0, 0, 0] for b in _epoch(again)]).astype(int).tolist() \
        == first.tolist()
    for x, y in _epoch(batches):  # labels travel with their images
        assert (y == x[:, 0, 0, 0].astype(int) % 2).all()


def test_class_weights_become_per_sample_weights_only_when_they_differ_from_one():
    labels = np.array([0, 0, 0, 1])
    weighted = _epoch(make_batches(_images(4), labels, 4, class_weight={0: 0.5, 1: 2.0}))
    assert weighted[0][2].tolist() == [0.5, 0.5, 0.5, 2.0]
    even = _epoch(make_batches(_images(4), labels, 4, class_weight={0: 1.0, 1: 1.0}))
    assert len(even[0]) == 2  # (x, y): Keras does no weighting work at all


def test_a_loader_keeps_the_per_batch_sequence_for_data_bigger_than_memory():
    batches = make_batches(lambda idx: _images(6)[idx], np.zeros(6, dtype=int), 4)
    assert isinstance(batches.data, BatchSequence) and batches.samples == 6
    assert len(batches.data) == 2


def test_the_last_partial_batch_is_kept():
    sizes = [len(b[1]) for b in _epoch(make_batches(_images(9), np.zeros(9, dtype=int), 4))]
    assert sizes == [4, 4, 1]


def test_threaded_decoding_gives_exactly_the_arrays_the_device_loader_gives(tmp_path):
    from PIL import Image

    from edgepose.data.splits import Sample, Splits
    from edgepose.rundir import load_inputs
    from edgepose.runtime.preprocess import ImagePreprocessing
    from edgepose.train.image_classifier import _decode_all

    rng = np.random.default_rng(0)
    samples = []
    for i, (w, h) in enumerate([(40, 30), (17, 64), (96, 96), (5, 7), (300, 120)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png")
        samples.append(Sample(f"{i}.png", i % 2, "train"))
    splits = Splits(task="image", root=str(tmp_path), classes=["a", "b"], items=samples)
    spec = ImagePreprocessing(24, 24)
    seen: list[int] = []
    decoded = _decode_all(splits, samples, spec, lambda done, total: seen.append(done))
    expected, _ = load_inputs(splits, samples, {"task": "image",
                                                "preprocessing": spec.to_dict()})
    assert decoded.dtype == np.uint8 and np.array_equal(decoded, expected)
    assert seen == [1, 2, 3, 4, 5]
