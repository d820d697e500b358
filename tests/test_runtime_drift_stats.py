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


@pytest.mark.parametrize("candidate", [
    # dequantized uint8 softmax rows: steps of 1/256 that sum to more than 1
    [[0.5, 0.25390625, 0.25], [0.33203125, 0.3359375, 0.3359375]],
    # ... and to less than 1
    [[0.49609375, 0.25, 0.25], [0.33203125, 0.33203125, 0.33203125]],
    # a class rounded to exactly 0
    [[0.75, 0.25, 0.0], [0.0, 0.5, 0.5]],
])
def test_kl_of_quantized_outputs_is_never_negative(candidate):
    reference = np.array([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]])
    candidate = np.array(candidate)
    stats = compare_outputs(reference, candidate)
    assert stats.mean_kl >= 0.0
    # equal to the KL of the normalised rows (Gibbs' inequality holds for those)
    q = np.clip(candidate, 1e-7, 1.0)  # drift_stats' floor for a probability of 0
    q = q / q.sum(1, keepdims=True)
    expected = np.mean(np.sum(reference * np.log(reference / q), axis=1))
    assert stats.mean_kl == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_kl_of_a_row_that_only_lost_its_scale_is_zero():
    reference = np.array([[0.6, 0.3, 0.1]])
    stats = compare_outputs(reference, reference * 1.01)  # same distribution, sums to 1.01
    assert stats.mean_kl == pytest.approx(0.0, abs=1e-12)
