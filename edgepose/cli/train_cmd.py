"""`edgepose train ...` (host side: needs edgepose[train])."""

import click

from edgepose.cli import LazyGroup


@click.group(cls=LazyGroup, lazy_commands={
    "image": "edgepose.cli.train_image_cmd:image",
    "keypoints": "edgepose.cli.train_keypoints_cmd:keypoints",
})
def train() -> None:
    """Train a classifier from a folder of examples into models/<run>/."""

