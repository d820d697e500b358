"""The ``edgepose`` command: a thin click shell over the library.

Subcommands live in their own modules and are imported only when used, so
``edgepose predict`` on a Pi never pays for (or needs) the training stack.
Any :class:`~edgepose.errors.EdgeposeError` becomes one line on stderr and a
non-zero exit code.
"""

from __future__ import annotations

import importlib
import sys

import click

from edgepose import __version__
from edgepose.errors import ConfigError, EdgeposeError
from edgepose.extras import TRAIN_EXTRA_MODULES, missing_modules, train_extra_hint

# name -> "module:attribute"; each module holds one command or group.
COMMANDS = {
    "data": "edgepose.cli.data_cmd:data",
    "train": "edgepose.cli.train_cmd:train",
    "eval": "edgepose.cli.eval_cmd:eval_command",
    "keypoints": "edgepose.cli.keypoints_cmd:keypoints",
    "convert": "edgepose.cli.convert_cmd:convert",
    "predict": "edgepose.cli.predict_cmd:predict",
    "bench": "edgepose.cli.bench_cmd:bench",
    "serve": "edgepose.cli.serve_cmd:serve",
    "service": "edgepose.cli.serve_cmd:service",
    "arm": "edgepose.cli.arm_cmd:arm",
}

# Host-side commands (by path below `edgepose`) and the train-extra modules each
# needs to start: on a device install they stop with one line before any work.
HOST_ONLY = {
    ("train", "image"): ("tensorflow", "keras", "sklearn", "matplotlib"),
    ("train", "keypoints"): ("tensorflow", "keras", "sklearn", "matplotlib"),
    ("eval",): ("tensorflow", "keras", "sklearn", "matplotlib"),
    ("convert",): ("tensorflow", "keras"),
    ("data", "digits"): ("sklearn",),
}


def _command_path(ctx: click.Context, name: str) -> tuple[str, ...]:
    """``("train", "image")`` for ``edgepose train image``: the names below the root."""
    names = [name]
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return tuple(reversed(names))


def check_host_only(path: tuple[str, ...]) -> None:
    """Raise ConfigError with the train-extra hint when ``path`` needs a missing module.

    Raises:
        ConfigError: ``path`` needs a module of the train extra that is not installed.
    """
    missing = missing_modules(HOST_ONLY.get(path, ()))
    if missing:
        raise ConfigError(train_extra_hint("edgepose " + " ".join(path), missing))


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module on first use.

    ``lazy_commands`` maps a subcommand name to ``"module:attribute"``.
    """

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """The subcommand ``name``, importing its module on first use.

        Raises:
            ConfigError: the command's module needs the train extra, which is not installed.
        """
        if name in self.lazy_commands:
            module_name, attribute = self.lazy_commands[name].split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name and exc.name.startswith("edgepose.cli."):
                    return None  # command not built yet
                root = (exc.name or "").split(".")[0]
                if root in TRAIN_EXTRA_MODULES:
                    path = " ".join(("edgepose", *_command_path(ctx, name)))
                    raise ConfigError(train_extra_hint(path, [root])) from None
                raise
            return getattr(module, attribute)
        return super().get_command(ctx, name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        cmd_name, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None and not {"-h", "--help"} & set(rest):  # help works everywhere
            check_host_only(_command_path(ctx, cmd.name or cmd_name or ""))
        return cmd_name, cmd, rest

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            # A train-extra module imported on a path HOST_ONLY does not list: same hint.
            root = (exc.name or "").split(".")[0]
            if root not in TRAIN_EXTRA_MODULES:
                raise
            command = " ".join((ctx.command_path, ctx.invoked_subcommand or "")).strip()
            click.echo(f"error: {train_extra_hint(command, [root])}", err=True)
            sys.exit(ConfigError.exit_code)
        except EdgeposeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=LazyGroup, lazy_commands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgepose")
def main() -> None:
    """Train small image and pose-keypoint classifiers, convert them to TFLite
    with measured accuracy drift, and run them on a Raspberry Pi.

    \b
    Host side (the `train` extra: pip install '.[train]' in the checkout):
      edgepose data digits OUT/          write the bundled real digits dataset
      edgepose train image DATA/         transfer-learn an image classifier
      edgepose train keypoints DATA/     train an MLP on 2D pose keypoints
      edgepose convert RUN_DIR           TFLite fp32/fp16/dynamic/int8 + drift report
    Device side (the wheel alone, no TensorFlow):
      edgepose predict MODEL INPUT...    top-k labels for images or keypoint files
      edgepose bench MODEL... --split test   latency, accuracy and drift
      edgepose serve --model M --source S    the camera-classifier service
    """
