"""`edgepose data digits OUT/`: write scikit-learn's handwritten digits as an image folder."""

import click

from edgepose.cli.common import print_json, print_table
from edgepose.data.digits import build_digits


@click.command()
@click.argument("out", type=click.Path(path_type=str))
@click.option("--size", default=64, show_default=True, type=int,
              help="Width and height of each PNG (the 8x8 originals are upscaled, bicubic).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def digits(out: str, size: int, as_json: bool) -> None:
    """Write the 1797 real handwritten digits (10 classes) to OUT/<digit>/*.png.

    Offline: the data ships inside scikit-learn (needs edgepose[train]).
    A complete folder from an earlier run is reused.
    """
    result = build_digits(out, size)
    if as_json:
        print_json(result)
        return
    click.echo(f"{result.path}: {result.total} images in {len(result.classes)} classes, "
               f"{result.size}x{result.size} PNG"
               + (" (already complete, reused)" if result.reused else ""))
    print_table(None, ["class", "images"], [[name, n] for name, n in result.counts.items()])
