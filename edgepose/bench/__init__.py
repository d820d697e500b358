"""Device side: latency, accuracy and drift of .tflite models (no TensorFlow).

``measure`` (harness; ``run_bench`` is its keyword form) measures what a
:class:`~edgepose.bench.options.BenchOptions` asks for, into the dataclasses of
``results``: ``labelled_data`` finds and screens the samples (``heldout`` leaves out
the images a run trained or selected on), ``model_rows`` times
one model per setting, ``references`` scores accuracy and drift; ``session`` runs one
``edgepose bench`` call (measure, write, compare); ``any_model`` times a model that is not a
classifier; ``checks`` warns about a busy machine and modes slower than fp32;
``bench_report`` writes tables/CSV/Markdown/plots; ``baseline`` compares with a stored
result; ``device`` says what machine ran it. Samples are drawn by
:mod:`edgepose.sampling`.
"""

from edgepose.bench.device import DeviceInfo, device_info, machine_slug
from edgepose.bench.harness import run_bench
from edgepose.bench.results import BenchResult, BenchRow
from edgepose.bench.stats import LatencyStats, latency_stats

__all__ = [
    "BenchResult",
    "BenchRow",
    "DeviceInfo",
    "LatencyStats",
    "device_info",
    "latency_stats",
    "machine_slug",
    "run_bench",
]
