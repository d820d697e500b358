"""`edgepose serve` (the camera-classifier service) and `edgepose service install`."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

import click

from edgepose.cli.common import THREADS, print_json, print_table

_PATH = click.Path(dir_okay=False, path_type=Path)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")


@click.command()
@click.option("--model", required=True, type=_PATH, help="The .tflite classifier (its manifest "
              "model_x.json next to it gives labels and preprocessing).")
@click.option("--source", required=True, help="picamera2[:N], opencv:0, opencv:/dev/videoN, "
              "video:FILE, dir:FOLDER or test.")
@click.option("--pose-model", type=_PATH, help="Pose landmark model (keypoint classifiers).")
@click.option("--pose-detector", type=_PATH, help="Pose detector model (optional).")
@click.option("--labels", type=_PATH, help="Labels file, one per line (overrides the manifest).")
@click.option("--threads", "num_threads", type=THREADS,
              help="Interpreter threads, or 'auto': time 1, 2, 4 ... up to the cores available "
                   "at start-up and keep the fewest within 10% of the fastest (default: the "
                   "runtime's choice, one XNNPACK thread).")
@click.option("--top-k", default=3, show_default=True, type=click.IntRange(1, 100))
@click.option("--smoothing", type=click.Choice(["none", "majority", "ema"]), default="none",
              show_default=True, help="Temporal smoothing over the last --window frames.")
@click.option("--window", default=5, show_default=True, type=click.IntRange(1, 1000))
@click.option("--threshold", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Below this score the label is 'unknown'.")
@click.option("--events", "events_only", is_flag=True, help="Emit only when the label changes.")
@click.option("--stdout/--no-stdout", default=None,
              help="Print each result (default: on unless --jsonl or --mqtt is given).")
@click.option("--jsonl", type=_PATH, help="Append results to this JSON Lines file.")
@click.option("--jsonl-max-mb", default=10.0, show_default=True, type=float,
              help="Rotate the JSONL file at this size.")
@click.option("--jsonl-backups", default=3, show_default=True, type=click.IntRange(0, 100))
@click.option("--http", default="127.0.0.1:8080", show_default=True,
              help="HOST:PORT for the HTTP interface (port 0: any free port).")
@click.option("--no-http", is_flag=True, help="Do not start the HTTP interface.")
@click.option("--http-token-file", type=_PATH, help="Require 'Authorization: Bearer TOKEN' "
              "for POST /classify, TOKEN being this file's first line (or set "
              "$EDGEPOSE_HTTP_TOKEN; never put a token on the command line).")
@click.option("--http-max-connections", default=16, show_default=True,
              type=click.IntRange(1, 1024), help="HTTP connections served at once; more get 503.")
@click.option("--mqtt", help="Publish results to host:port/topic (needs paho-mqtt).")
@click.option("--loop", is_flag=True, help="Start a video file or folder over at its end.")
@click.option("--fps", type=float, help="Pace file/folder/test sources (0: as fast as possible).")
@click.option("--drop-frames/--no-drop-frames", default=None,
              help="Drop frames inference has no time for (default: only for live cameras and "
                   "the test pattern; a folder or an unlooped video is classified frame by "
                   "frame, in order).")
@click.option("--hflip", is_flag=True, help="Mirror the Pi camera horizontally.")
@click.option("--vflip", is_flag=True, help="Flip the Pi camera vertically.")
@click.option("--max-frames", type=click.IntRange(1), help="Stop after this many results.")
@click.option("--duration", "duration_s", type=float, help="Stop after this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def serve(as_json: bool, verbose: bool, jsonl_max_mb: float, no_http: bool, **options) -> None:
    """Classify camera frames continuously; report to stdout, JSONL, HTTP and MQTT.

    Stops cleanly on SIGTERM (exit code 0). Under systemd (Type=notify) it reports
    READY=1, pings the watchdog and shows fps in `systemctl status`.
    """
    from edgepose.service.serve import ServeConfig, run_service

    _setup_logging(verbose)
    if no_http:
        options["http"] = None
    config = ServeConfig(**options, jsonl_max_bytes=int(jsonl_max_mb * 1e6))
    summary = run_service(config)
    if as_json:
        print_json(summary.to_dict())
    else:
        print_table("edgepose serve", ["field", "value"],
                    [[k, v] for k, v in summary.to_dict().items()])


@click.group()
def service() -> None:
    """Run `edgepose serve` as a systemd service."""


@service.command()
@click.option("--model", required=True, type=_PATH, help="The .tflite classifier.")
@click.option("--source", required=True, help="As for `edgepose serve`.")
@click.option("--pose-model", type=_PATH)
@click.option("--pose-detector", type=_PATH)
@click.option("--name", default="edgepose", show_default=True, help="Unit name.")
@click.option("--user", "user_unit", is_flag=True, help="Install a user unit (systemctl --user).")
@click.option("--service-user", default="edgepose", show_default=True,
              help="System user the service runs as (created if missing).")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The only writable directory (default /var/lib/NAME).")
@click.option("--http", default="127.0.0.1:8080", show_default=True)
@click.option("--watchdog-sec", default=30, show_default=True, type=int)
@click.option("--serve-args", default="", help="More `edgepose serve` options, quoted as one "
              "string, e.g. '--smoothing majority --events'.")
@click.option("--unit-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write the unit here instead of the systemd directory.")
@click.option("--allow-ip", multiple=True, help="An address (CIDR) the service may reach besides "
              "loopback, e.g. an MQTT broker; 'any' lifts the IP restriction (default: "
              "loopback only, unless --http or --mqtt point elsewhere).")
@click.option("--force", is_flag=True, help="Install even when the unit could not see the "
              "model or Python (e.g. under /tmp); the problems are printed as warnings.")
@click.option("--print", "print_only", is_flag=True, help="Only print the unit.")
@click.option("--json", "as_json", is_flag=True)
def install(serve_args: str, unit_dir: Path | None, print_only: bool, as_json: bool,
            allow_ip: tuple[str, ...], force: bool, **options) -> None:
    """Write a hardened systemd unit for `edgepose serve`."""
    from edgepose.service.unit import (
        UnitOptions,
        install_unit,
        permission_warnings,
        render_unit,
        unreachable_paths,
    )

    unit = UnitOptions(**options, extra_args=shlex.split(serve_args),
                       allow_ip=list(allow_ip) if allow_ip else None)
    if print_only:
        click.echo(render_unit(unit), nl=False)
        for problem in unreachable_paths(unit) + permission_warnings(unit):
            click.echo(f"warning: {problem}", err=True)
        return
    result = install_unit(unit, unit_dir=unit_dir, force=force,
                          say=lambda text: click.echo(text, err=True))
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        print_json(result)
        return
    click.echo(f"wrote {result.unit_path}")
    click.echo("next:")
    for step in result.next_steps:
        click.echo(f"  {step}")
