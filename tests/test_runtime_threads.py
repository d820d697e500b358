"""``--threads auto``: the thread counts tried, the rule that picks one, and the real timing
on the session's tiny TFLite models, through predict (edgepose.runtime.threads; serve:
tests/test_service_threads.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgepose.cli import main
from edgepose.runtime.threads import (
    ThreadChoice,
    choose_threads,
    pick_threads,
    resolve_threads,
    thread_candidates,
)


@pytest.mark.parametrize("cores, counts", [(1, [1]), (2, [1, 2]), (3, [1, 2, 3]),
                                           (4, [1, 2, 4]), (6, [1, 2, 4, 6]),
                                           (8, [1, 2, 4, 8])])
def test_the_counts_tried_are_powers_of_two_then_every_core(cores, counts):
    assert thread_candidates(cores) == counts


@pytest.mark.parametrize("p50, chosen", [
    ({1: 6.72, 2: 3.30}, 2),  # MobileNetV2-224 fp32 on 2 cores: twice as fast
    ({1: 0.33, 2: 0.53}, 1),  # MobileNetV3-Small-96 fp32: the second thread costs more
    ({1: 1.00, 2: 0.95}, 1),  # 5% faster is within the 10% margin: the fewer threads
    ({1: 1.00, 2: 0.90}, 2),  # exactly 10% is enough
    ({1: 10.0, 2: 6.0, 4: 5.8}, 2),  # 4 beats 2 by 3%: not worth two more cores
    ({1: 10.0, 2: 6.0, 4: 4.0}, 4)])
def test_the_fewest_threads_within_ten_percent_of_the_fastest_are_chosen(p50, chosen):
    assert pick_threads(p50) == chosen


def test_the_choice_describes_itself_in_one_line():
    assert ThreadChoice(2, {2: 3.3, 1: 6.72}).describe() == \
        "auto: 1 -> 6.72 ms, 2 -> 3.30 ms; 2 threads"
    assert ThreadChoice(1, {1: 0.33, 2: 0.53}).describe() == \
        "auto: 1 -> 0.33 ms, 2 -> 0.53 ms; 1 thread"
    assert ThreadChoice(1).describe() == "auto: 1 core available; 1 thread"


def test_a_real_model_is_timed_at_each_count_and_the_rule_applied(tiny_run):
    choice = choose_threads(tiny_run.fp32, cores=2, seconds=0.1)
    assert sorted(choice.p50_ms) == [1, 2]
    assert all(ms > 0 for ms in choice.p50_ms.values())
    assert choice.threads == pick_threads(choice.p50_ms)


def test_one_core_is_not_timed(tiny_run):
    assert choose_threads(tiny_run.fp32, cores=1) == ThreadChoice(1, {})


def test_a_count_or_the_default_passes_through_untimed(tiny_run):
    assert resolve_threads(3, tiny_run.fp32) == (3, None)
    assert resolve_threads(None, tiny_run.fp32) == (None, None)
    threads, choice = resolve_threads("auto", tiny_run.int8)
    assert choice is not None and threads == choice.threads >= 1


def test_predict_with_auto_threads_says_what_it_timed_and_chose(tiny_run):
    image = str(tiny_run.data / "one" / "000.png")
    result = CliRunner().invoke(main, ["predict", str(tiny_run.int8), image, "--threads",
                                       "auto", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["threads_auto"].startswith("auto: 1 -> ")
    assert data["threads_auto"].endswith(f"; {data['threads']} thread"
                                         + ("s" if data["threads"] > 1 else ""))
    table = CliRunner().invoke(main, ["predict", str(tiny_run.int8), image, "--threads", "auto"])
    assert f"threads {data['threads']} (auto: 1 -> " in table.output
    default = CliRunner().invoke(main, ["predict", str(tiny_run.int8), image])
    assert "threads default (1)" in default.output


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_a_bad_thread_count_is_a_usage_error_naming_it(tiny_run, value):
    result = CliRunner().invoke(main, ["predict", str(tiny_run.int8),
                                       str(tiny_run.data / "one" / "000.png"), "--threads", value])
    assert result.exit_code == 2
    assert f"expected a thread count >= 1 or 'auto', got '{value}'" in result.output


def test_auto_is_accepted_in_any_case_as_the_help_shows_it():
    from edgepose.cli.common import THREADS

    assert THREADS.convert("AUTO", None, None) == THREADS.convert("auto", None, None) == "auto"
    assert THREADS.convert("3", None, None) == 3
