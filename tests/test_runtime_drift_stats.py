import numpy as np
import pytest

from edgepose.runtime.drift_stats import compare_outputs


def test_identical_outputs_have_no_drift():
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    stats = compare_outputs(probs, probs, labels=np.array([0, 1]))
    assert stats.top1_agreement == 1.0
    assert stats.max_abs_diff == 0.0
    assert stats.mean_kl == pytest.approx(0.0, abs=1e-9)
    assert stats.accuracy_delta == 0.0


def test_a_flipped_prediction_shows_in_agreement_accuracy_and_kl():
    reference = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    candidate = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.4, 0.6]])
    stats = compare_outputs(reference, candidate, labels=np.array([0, 1, 0, 1]),
                            class_names=["a", "b"])
    assert stats.top1_agreement == 0.75
    assert stats.accuracy == 0.75 and stats.reference_accuracy == 1.0
    assert stats.accuracy_delta == pytest.approx(-0.25)
    assert stats.per_class_accuracy_delta == {"a": pytest.approx(-0.5), "b": 0.0}
    assert stats.max_abs_diff == pytest.approx(0.3)
    expected_kl = (0.7 * np.log(0.7 / 0.4) + 0.3 * np.log(0.3 / 0.6)) / 4
    assert stats.mean_kl == pytest.approx(expected_kl, rel=1e-5)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        compare_outputs(np.zeros((2, 3)), np.zeros((2, 2)))
