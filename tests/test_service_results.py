"""Smoothing, threshold and event mode of the reported results."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.errors import ConfigError
from edgepose.service.results import NO_PERSON, UNKNOWN, ResultPolicy, Smoother

LABELS = ["sit", "stand", "wave"]
SIT, STAND, WAVE = np.eye(3, dtype=np.float32) * 0.8 + 0.2 / 3


def run(policy: ResultPolicy, frames):
    return [policy.apply(p, latency_ms=1.0, age_ms=2.0, frame=i, timestamp=float(i))
            for i, p in enumerate(frames, start=1)]


def test_majority_vote_ignores_a_single_odd_frame():
    results = run(ResultPolicy(LABELS, "majority", window=5), [SIT, SIT, SIT, WAVE, SIT])
    assert [r.label for r in results] == ["sit"] * 5
    assert results[3].raw_label == "wave"


def test_majority_vote_follows_a_lasting_change():
    results = run(ResultPolicy(LABELS, "majority", window=3), [SIT, SIT, STAND, STAND, STAND])
    assert [r.label for r in results] == ["sit", "sit", "sit", "stand", "stand"]


def test_ema_changes_label_only_after_the_average_moves():
    results = run(ResultPolicy(LABELS, "ema", window=5), [SIT, SIT, SIT, STAND, STAND, STAND])
    labels = [r.label for r in results]
    assert labels[3] == "sit" and labels[-1] == "stand"
    assert sum(results[-1].top_k[i].score for i in range(3)) == pytest.approx(1.0, abs=1e-5)


def test_score_below_threshold_is_unknown():
    unsure = np.array([0.4, 0.35, 0.25], dtype=np.float32)
    result = run(ResultPolicy(LABELS, threshold=0.5), [unsure, SIT])
    assert result[0].label == UNKNOWN and result[0].raw_label == "sit"
    assert result[1].label == "sit"


def test_event_mode_emits_only_changes():
    policy = ResultPolicy(LABELS, events_only=True)
    results = run(policy, [SIT, SIT, STAND, STAND, SIT])
    emitted = [r.label for r in results if policy.should_emit(r)]
    assert emitted == ["sit", "stand", "sit"]


def test_no_person_is_a_result_and_resets_smoothing():
    policy = ResultPolicy(LABELS, "majority", window=5)
    results = run(policy, [WAVE, WAVE, None, SIT])
    assert results[2].label == NO_PERSON and results[2].person is False
    assert results[3].label == "sit"  # the waves before nobody was there are forgotten


def test_bad_smoothing_settings_are_config_errors():
    with pytest.raises(ConfigError):
        Smoother("median")
    with pytest.raises(ConfigError):
        Smoother("ema", window=0)
    with pytest.raises(ConfigError):
        ResultPolicy(LABELS, threshold=1.5)
