"""The shared fit loop pieces: batches, class weights, strategies, history."""

from __future__ import annotations

import numpy as np

from edgepose.train.training import BatchSequence, TrainingHistory, make_strategy


def test_batches_cover_every_sample_once_per_epoch_in_a_seeded_order():
    x = np.arange(10, dtype=np.uint8).reshape(10, 1)
    labels = np.array([0, 1] * 5)
    first = BatchSequence(x, labels, 4, shuffle=True, seed=7)
    again = BatchSequence(x, labels, 4, shuffle=True, seed=7)
    assert len(first) == 3
    order = np.concatenate([first[i][0][:, 0] for i in range(len(first))])
    assert sorted(order.tolist()) == list(range(10))
    assert order.tolist() == np.concatenate([again[i][0][:, 0] for i in range(3)]).tolist()
    assert first[0][0].dtype == np.float32
    first.on_epoch_end()
    assert np.concatenate([first[i][0][:, 0] for i in range(3)]).tolist() != order.tolist()


def test_class_weights_become_per_sample_weights():
    labels = np.array([0, 0, 0, 1])
    batch = BatchSequence(np.zeros((4, 2)), labels, 4, class_weight={0: 0.5, 1: 2.0})
    _, y, weights = batch[0]
    assert weights.tolist() == [0.5, 0.5, 0.5, 2.0]
    assert y.tolist() == labels.tolist()


def test_a_loader_reads_only_the_requested_batch():
    requested = []

    def load(indices):
        requested.append(indices.tolist())
        return np.stack([np.full((2, 2, 3), i) for i in indices])

    batches = BatchSequence(load, np.zeros(5, dtype=int), 2)
    x, _, _ = batches[2]
    assert requested == [[4]]
    assert x.shape == (1, 2, 2, 3) and x[0, 0, 0, 0] == 4.0


def test_mirrored_strategy_without_two_gpus_falls_back_to_one_device():
    assert make_strategy("mirrored").num_replicas_in_sync == 1


def test_best_epoch_is_the_lowest_validation_loss():
    history = TrainingHistory(rows=[{"stage": "a", "epoch": 1, "val_loss": 0.9},
                                    {"stage": "a", "epoch": 2, "val_loss": 0.4},
                                    {"stage": "b", "epoch": 3, "val_loss": 0.6}])
    assert history.best()["epoch"] == 2
    assert history.epochs == 3
