"""`edgepose keypoints ...`: pose keypoints from images, and where the pose models come from."""

from __future__ import annotations

import click

from edgepose.cli.common import THREADS, console, print_json, print_table
from edgepose.runtime.layouts import DEFAULT_LAYOUT


@click.group()
def keypoints() -> None:
    """Extract pose keypoints from images with MediaPipe BlazePose (device side)."""


@keypoints.command()
@click.argument("images", type=click.Path(path_type=str))
@click.argument("out", type=click.Path(path_type=str))
@click.option("--layout", default=DEFAULT_LAYOUT, show_default=True,
              type=click.Choice(["mediapipe33", "coco17", "body14"]),
              help="Keypoint layout of the written vectors.")
@click.option("--landmark-model", default=None,
              help="pose_landmark_full.tflite [default: found by `edgepose keypoints models`].")
@click.option("--detector-model", default=None,
              help="pose_detection.tflite [default: next to the landmark model].")
@click.option("--no-detector", is_flag=True,
              help="Skip person detection: use a centred square crop of the whole image.")
@click.option("--threads", type=THREADS, default=None,
              help="Interpreter threads, or 'auto': each pose model timed at 1, 2, 4 ... "
                   "threads and the fewest within 10% of the fastest kept.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def extract(images: str, out: str, layout: str, landmark_model: str | None,
            detector_model: str | None, no_detector: bool, threads: int | str | None,
            as_json: bool) -> None:
    """Write OUT/<same folders>/<image>.json (keypoints + score) for every image in IMAGES/.

    x, y are normalised 0..1 by image width and height. Images with nobody in
    them, and unreadable images, are listed (and in OUT/extract_report.json).
    """
    from edgepose.pose.extract import extract_keypoints

    result = extract_keypoints(images, out, layout=layout, landmark_model=landmark_model,
                               detector_model=detector_model, no_detector=no_detector,
                               num_threads=threads)
    if as_json:
        print_json(result)
        return
    print_table(f"{images} -> {out} ({result.layout}, crop: {result.crop})",
                ["images", "written", "no person", "unreadable", "ms/image"],
                [[result.images, len(result.written), len(result.no_person),
                  len(result.unreadable), result.mean_ms_per_image]])
    for name, choice in result.threads_auto.items():
        console.print(f"threads for {name} {choice}")
    for path in result.no_person:
        console.print(f"no person: {path}")
    for path in result.unreadable:
        console.print(f"unreadable: {path}")
    console.print(f"report: {result.report_path}")


@keypoints.command()
@click.option("--from-wheel", "wheel", default=None, type=click.Path(path_type=str),
              help="A downloaded mediapipe-0.10.18-*.whl to take the models from.")
@click.option("--out", default=None, type=click.Path(path_type=str),
              help="Where to put the extracted models [default: ~/.cache/edgepose/models].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def models(wheel: str | None, out: str | None, as_json: bool) -> None:
    """Where the BlazePose models come from; extract them from a mediapipe wheel."""
    from edgepose.pose.models import models_info

    info = models_info(wheel, out)
    if as_json:
        print_json(info)
        return
    console.print(f"BlazePose models ({info.license}) ship in the {info.requirement} wheel:")
    for name, member in info.members.items():
        console.print(f"  {name}  <-  {member}")
    console.print(f"1. {info.download_command}")
    console.print(f"2. {info.extract_command}")
    for path in info.extracted:
        console.print(f"extracted {path}")
    if info.found:
        console.print(f"found: {info.found.landmark}"
                      + (f" and {info.found.detector}" if info.found.detector else
                         " (no detector: centred-square crop)"))
    else:
        console.print("not found in: " + ", ".join(info.search_path))


@keypoints.command()
@click.option("--out", default=None, type=click.Path(path_type=str),
              help="Where to put the models [default: $EDGEPOSE_MODELS_DIR, else "
                   "~/.cache/edgepose/models: the folder the search reads].")
@click.option("--from-wheel", "wheel", default=None, type=click.Path(path_type=str),
              help="A mediapipe-0.10.18-*.whl already downloaded (no network needed).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def fetch(out: str | None, wheel: str | None, as_json: bool) -> None:
    """Download the BlazePose models through pip, check their sha256 and cache them.

    One step for `keypoints extract`, `data poses` and the service: pip fetches
    the mediapipe 0.10.18 wheel, the two .tflite files are taken out of it and
    verified. With no network it says exactly what to copy where.
    """
    from edgepose.pose.models import fetch_pose_models

    result = fetch_pose_models(out, wheel)
    if as_json:
        print_json(result)
        return
    how = {"cache": "already there, verified", "pip": "downloaded through pip, verified"}
    source = how.get(result.source, f"from {result.source}, verified")
    console.print(f"{result.directory}: {source}", highlight=False)
    for path in result.files:
        console.print(f"  {path}", highlight=False)
