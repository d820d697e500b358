"""`bench --baseline`: a latency difference inside the measured noise is not a change.

Timings are real (real tiny .tflite models on this machine); the "shifted" cases move
a real series by a multiple of its own measured noise floor, never by a hard-coded
figure.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgepose.bench.baseline import compare_with_baseline, noise_floor_ms
from edgepose.bench.harness import run_bench
from edgepose.cli import main
from edgepose.errors import RegressionDetected
from edgepose.fileio import write_json
from tests import contract_models as cm


def heavy_model():
    """Many times the work of the brightness model: five 3x3 convolutions of 32 channels."""
    import keras

    inputs = keras.Input((64, 64, 3), batch_size=1)
    x = inputs
    for _ in range(5):
        x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


class Pair:
    """The same file name (so rows match) in two folders: light and heavy."""

    def __init__(self, root: Path):
        import keras

        keras.utils.set_random_seed(0)
        (root / "light").mkdir()
        (root / "heavy").mkdir()
        self.light = cm.to_tflite(cm.brightness_model("0..1"), root / "light" / "model.tflite")
        self.heavy = cm.to_tflite(heavy_model(), root / "heavy" / "model.tflite")


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Pair:
    return Pair(tmp_path_factory.mktemp("noise"))


@pytest.fixture(scope="module")
def light_result(pair):
    return run_bench([pair.light], runs=20, warmup=2, threads=[1])


def _shifted(result, metric: str, by_ms: float):
    """The same real series, every statistic moved by ``by_ms`` (its spread unchanged)."""
    moved = copy.deepcopy(result)
    row = moved.rows[0]
    stats = getattr(row, metric)
    for name in ("mean_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"):
        setattr(stats, name, getattr(stats, name) + by_ms)
    setattr(row, f"{metric}_ms", [t + by_ms for t in getattr(row, f"{metric}_ms")])
    return moved


def _noise(result, metric: str = "invoke") -> float:
    row = result.rows[0]
    stats, runs = vars(getattr(row, metric)), getattr(row, f"{metric}_ms")
    return noise_floor_ms(stats, stats, runs, runs)


def _delta(comparison, metric: str):
    [delta] = [d for d in comparison.deltas if d.metric == metric]
    return delta


def test_a_difference_inside_the_noise_is_within_noise_even_at_tolerance_0(light_result,
                                                                          tmp_path):
    baseline = write_json(tmp_path / "base.json", light_result)
    noise = _noise(light_result)
    assert noise > 0
    current = _shifted(light_result, "invoke", 0.5 * noise)
    delta = _delta(compare_with_baseline(current, baseline, tolerance=0.0), "invoke.p50_ms")
    assert delta.noise == pytest.approx(noise)
    assert delta.current > delta.baseline and not delta.regressed
    assert delta.verdict == "within noise"


def test_a_difference_beyond_the_noise_and_the_tolerance_regresses(light_result, tmp_path):
    baseline = write_json(tmp_path / "base.json", light_result)
    noise = _noise(light_result)
    by = max(2 * noise, 0.2 * light_result.rows[0].invoke.p50_ms)  # beyond the noise and 10 %
    comparison = compare_with_baseline(_shifted(light_result, "invoke", by), baseline, 0.10)
    delta = _delta(comparison, "invoke.p50_ms")
    assert delta.regressed and delta.verdict == "regressed"
    with pytest.raises(RegressionDetected, match=r"invoke\.p50_ms .* noise "):
        comparison.raise_on_regression()


def test_beyond_the_noise_but_within_tolerance_is_slower_not_regressed(light_result,
                                                                       tmp_path):
    baseline = write_json(tmp_path / "base.json", light_result)
    noise = _noise(light_result)
    delta = _delta(compare_with_baseline(_shifted(light_result, "invoke", 2 * noise), baseline,
                                         tolerance=1e6), "invoke.p50_ms")
    assert (delta.regressed, delta.verdict) == (False, "slower")


def test_a_really_heavier_model_regresses_and_the_reverse_is_faster(pair, light_result,
                                                                    tmp_path):
    heavy = run_bench([pair.heavy], runs=20, warmup=2, threads=[1])
    light_base = write_json(tmp_path / "light.json", light_result)
    heavy_base = write_json(tmp_path / "heavy.json", heavy)
    slower = _delta(compare_with_baseline(heavy, light_base, 0.10), "invoke.p50_ms")
    assert slower.ratio > 2 and slower.verdict == "regressed"
    assert slower.current - slower.baseline > slower.noise
    faster = _delta(compare_with_baseline(light_result, heavy_base, 0.10), "invoke.p50_ms")
    assert faster.verdict == "faster" and not faster.regressed


def test_too_few_runs_to_measure_the_noise_is_said(pair, light_result, tmp_path):
    few = run_bench([pair.light], runs=2, warmup=0, threads=[1])
    baseline = write_json(tmp_path / "few.json", few)
    comparison = compare_with_baseline(light_result, baseline, 0.10)
    assert ("model.tflite t=1 xnnpack: 2 timed run(s) in the baseline: too few to "
            "measure the noise; use --runs 20 or more") in comparison.warnings


def test_bench_cli_shows_the_noise_and_exits_3_on_a_real_regression(pair, light_result,
                                                                    tmp_path):
    baseline = write_json(tmp_path / "light.json", light_result)
    result = CliRunner().invoke(main, ["bench", str(pair.heavy), "--runs", "20", "--warmup",
                                       "2", "--baseline", str(baseline)])
    assert result.exit_code == 3, result.output
    text = " ".join(result.output.split())
    assert "noise ms" in text and "REGRESSED" in text
    assert "regression(s) beyond 10% of" in text and "invoke.p50_ms" in text
