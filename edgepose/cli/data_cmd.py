"""`edgepose data ...`: build the bundled real datasets."""

import click

from edgepose.cli import LazyGroup


@click.group(cls=LazyGroup, lazy_commands={
    "digits": "edgepose.cli.data_digits_cmd:digits",
    "poses": "edgepose.cli.data_poses_cmd:poses",
})
def data() -> None:
    """Write the bundled real datasets as folders, offline."""
