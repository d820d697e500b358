"""One owner per idea on the CLI side: the XNNPACK choice and the serve summary record."""

from __future__ import annotations

import dataclasses

import pytest

from edgepose.cli.arm_view import kernel_sets, xnnpack_settings
from edgepose.errors import ConfigError
from edgepose.runtime.classifier import Classification, rank_labels
from edgepose.service.pipeline import PipelineSummary
from edgepose.service.serve import ServeSummary


@pytest.mark.parametrize("choice, no_xnnpack, settings, kernels", [
    ("on", False, [True], ("xnnpack",)),
    ("off", False, [False], ("reference",)),
    ("both", False, [True, False], ("xnnpack", "reference")),
    ("both", True, [False], ("reference",)),  # --no-xnnpack wins over --xnnpack both
    ("xnnpack", False, [True], ("xnnpack",)),  # arm bench --kernels spellings
    ("reference", False, [False], ("reference",)),
])
def test_one_mapping_from_the_xnnpack_choice(choice, no_xnnpack, settings, kernels):
    assert xnnpack_settings(choice, no_xnnpack) == settings
    assert kernel_sets(choice, no_xnnpack) == kernels


def test_an_unknown_xnnpack_choice_is_refused_naming_it():
    with pytest.raises(ConfigError, match="XNNPACK choice must be one of .* not 'maybe'"):
        xnnpack_settings("maybe")


def test_the_serve_json_record_is_flat_with_every_pipeline_counter():
    run = PipelineSummary(frames_captured=9, frames_classified=7, frames_dropped=2, bad_frames=1,
                          source_failures=0, inference_errors=0, sink_errors=3,
                          seconds=1.23456, stopped_by="signal", watchdog_stalls=1)
    record = ServeSummary("m.tflite", "image", "folder:x", None, run, "sit").to_dict()
    assert list(record) == ["model", "task", "threads", "source", "http_url", "stopped_by",
                            "seconds", "frames_captured", "frames_classified", "frames_dropped",
                            "bad_frames", "source_failures", "inference_errors", "sink_errors",
                            "last_label", "watchdog_stalls"]
    assert (record["seconds"], record["sink_errors"], record["watchdog_stalls"]) == (1.235, 3, 1)
    counters = {f.name for f in dataclasses.fields(PipelineSummary)}
    assert counters <= set(record)  # a new pipeline counter reaches serve --json by itself


def test_ranked_labels_are_one_type_best_first_ties_in_class_order():
    ranked = rank_labels([0.2, 0.5, 0.2, 0.1], ["a", "b", "c", "d"], 3)
    assert ranked == [Classification(1, "b", 0.5), Classification(0, "a", 0.2),
                      Classification(2, "c", 0.2)]
    assert dataclasses.asdict(ranked[0]) == {"index": 1, "label": "b", "score": 0.5}
