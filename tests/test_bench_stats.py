import itertools

import pytest

from edgepose.bench.stats import latency_stats, time_calls


class FakeClock:
    """Advances by the next scripted duration at every second reading (end of a call)."""

    def __init__(self, durations_ns):
        self.now = 0
        self.durations = iter(durations_ns)
        self.reads = itertools.count()

    def __call__(self) -> int:
        if next(self.reads) % 2 == 1:
            self.now += next(self.durations)
        return self.now


def test_time_calls_measures_each_call_with_the_injected_clock():
    clock = FakeClock([1_000_000, 3_000_000, 2_000_000])
    calls = []
    durations = time_calls(calls.append, runs=3, warmup=2, clock=clock)
    assert durations == [1_000_000, 3_000_000, 2_000_000]
    assert calls == [0, 1, 0, 1, 2]  # warm-up calls run but are not timed


def test_latency_stats_on_known_values():
    samples = [ms * 1_000_000 for ms in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)]
    stats = latency_stats(samples)
    assert stats.count == 10
    assert stats.mean_ms == pytest.approx(5.5)
    assert stats.std_ms == pytest.approx(2.8722813)  # population std of 1..10
    assert (stats.min_ms, stats.max_ms) == (1.0, 10.0)
    assert stats.p50_ms == pytest.approx(5.5)
    assert stats.p90_ms == pytest.approx(9.1)
    assert stats.p99_ms == pytest.approx(9.91)
    assert stats.throughput_per_s == pytest.approx(1000 / 5.5)


def test_latency_stats_refuses_an_empty_series():
    with pytest.raises(ValueError):
        latency_stats([])
