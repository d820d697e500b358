"""`edgepose data poses OUT/`: the derived-label pose dataset from real package photos."""

import click

from edgepose.cli.common import console, print_json, print_table
from edgepose.runtime.layouts import DEFAULT_LAYOUT


@click.command()
@click.argument("out", type=click.Path(path_type=str))
@click.option("--per-photo", default=110, show_default=True, type=int,
              help="Variants per source photo (the first is the photo itself).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--layout", default=DEFAULT_LAYOUT, show_default=True,
              type=click.Choice(["coco17", "mediapipe33", "body14"]),
              help="Keypoint layout written (recorded in each file; `train keypoints` reads it).")
@click.option("--landmark-model", default=None, help="pose_landmark_full.tflite path.")
@click.option("--detector-model", default=None, help="pose_detection.tflite path.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def poses(out: str, per_photo: int, seed: int, layout: str, landmark_model: str | None,
          detector_model: str | None, as_json: bool) -> None:
    """Write OUT/posture/<class>/*.json: BlazePose keypoints of real photos (and their
    rotated, mirrored, scaled, colour-jittered variants) labelled by a documented
    rule on the landmarks (docs/poses.md). Offline; needs scikit-image."""
    from edgepose.data.poses import build_poses

    result = build_poses(out, per_photo=per_photo, seed=seed, layout=layout,
                         landmark_model=landmark_model, detector_model=detector_model)
    if as_json:
        print_json(result)
        return
    print_table(f"{result.out_dir}/{result.category}: {sum(result.counts.values())} samples "
                f"from {', '.join(result.photos)} in {result.seconds:.1f} s",
                ["class", "samples"], [[k, v] for k, v in result.counts.items()])
    console.print(f"rule: {result.rule}")
    console.print(f"{result.variants} variants: {result.no_person} without a person, "
                  f"{result.in_gap} between the classes (left out)")
