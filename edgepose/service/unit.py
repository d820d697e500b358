"""``edgepose service install``: a hardened systemd unit for ``edgepose serve``.

The unit is ``Type=notify`` with a watchdog (the service reports ``READY=1``
and pings ``WATCHDOG=1``), restarts on failure, runs as a dedicated system
user in the ``video`` group, and sees the file system read-only except for
its output directory.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from edgepose.errors import ConfigError, DataError
from edgepose.fileio import write_text
from edgepose.service.sources import parse_source

SYSTEM_UNIT_DIR = Path("/etc/systemd/system")


@dataclass
class UnitOptions:
    """What goes into the unit."""

    model: Path
    source: str
    name: str = "edgepose"
    user_unit: bool = False
    service_user: str = "edgepose"
    output_dir: Path | None = None  # default /var/lib/<name> (user unit: ~/.local/state/<name>)
    http: str = "127.0.0.1:8080"
    watchdog_sec: int = 30
    pose_model: Path | None = None
    pose_detector: Path | None = None
    extra_args: list[str] = field(default_factory=list)  # more `edgepose serve` options


@dataclass
class InstallResult:
    """Where the unit went and what the user does next."""

    unit_path: str
    unit_text: str
    service_user: str | None
    output_dir: str
    created_user: bool
    reloaded: bool
    next_steps: list[str]


def edgepose_command() -> list[str]:
    """The absolute command that runs this installation's ``edgepose``.

    The script next to this interpreter (the venv's ``bin/edgepose``) first,
    then whatever ``edgepose`` is on PATH, else ``python -m edgepose``.
    """
    beside = Path(sys.executable).parent / "edgepose"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("edgepose")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "edgepose"]


def systemd_quote(arg: str) -> str:
    """Quote one ExecStart argument: ``%`` and ``$`` escaped, spaces and quotes in quotes."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if escaped and not any(c in escaped for c in " \t\"'\\;"):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def default_output_dir(options: UnitOptions) -> Path:
    if options.output_dir is not None:
        return Path(options.output_dir).absolute()
    if options.user_unit:
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(state) / options.name
    return Path("/var/lib") / options.name


def _absolute_source(source: str) -> str:
    spec = parse_source(source)
    if spec.kind in ("video", "dir"):
        return f"{spec.kind}:{Path(spec.target).absolute()}"
    return str(spec)


def exec_start(options: UnitOptions) -> list[str]:
    """The full ``edgepose serve`` command line the unit runs (absolute paths)."""
    model = Path(options.model).absolute()
    if not model.is_file():
        raise DataError("model file not found", model)
    output = default_output_dir(options)
    args = [*edgepose_command(), "serve", "--model", str(model),
            "--source", _absolute_source(options.source), "--http", options.http,
            "--jsonl", str(output / "results.jsonl"), "--no-stdout"]
    for flag, path in (("--pose-model", options.pose_model),
                       ("--pose-detector", options.pose_detector)):
        if path is not None:
            if not Path(path).is_file():
                raise DataError("pose model file not found", path)
            args += [flag, str(Path(path).absolute())]
    return args + list(options.extra_args)


def _under_home(paths: list[str]) -> bool:
    homes = ("/home/", "/root/", "/run/user/")
    return any(p.startswith(homes) for p in paths)


def render_unit(options: UnitOptions) -> str:
    """The unit file text (checked by ``systemd-analyze verify`` in the tests)."""
    if options.watchdog_sec < 2:
        raise ConfigError(f"--watchdog-sec must be at least 2, got {options.watchdog_sec}")
    command = exec_start(options)
    output = default_output_dir(options)
    lines = [
        "# Written by `edgepose service install`; rerun it to change options.",
        "[Unit]",
        f"Description=edgepose camera classifier ({Path(options.model).name})",
        "Documentation=man:systemd.service(5)",
        "After=network.target",
        # Give up after 5 failed starts in 5 minutes instead of looping forever.
        "StartLimitIntervalSec=300",
        "StartLimitBurst=5",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        "ExecStart=" + " ".join(systemd_quote(a) for a in command),
        f"WatchdogSec={options.watchdog_sec}",
        # Loading the model and opening the camera can take a while on a Pi Zero.
        "TimeoutStartSec=120",
        "TimeoutStopSec=20",
        "Restart=on-failure",
        "RestartSec=5",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    if not options.user_unit:
        lines += [
            f"User={options.service_user}",
            f"Group={options.service_user}",
            # The camera devices (/dev/video*, /dev/media*, /dev/dma_heap) belong to 'video'.
            "SupplementaryGroups=video",
        ]
    reads_home = _under_home([str(Path(options.model).absolute()), command[0]])
    lines += [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        # read-only when the model or the venv lives in a home directory, else hidden.
        f"ProtectHome={'read-only' if reads_home or options.user_unit else 'yes'}",
        "PrivateTmp=yes",
        f"ReadWritePaths={output}",
    ]
    if not options.user_unit:
        lines += [
            "ProtectKernelTunables=yes",
            "ProtectKernelModules=yes",
            "ProtectControlGroups=yes",
            "RestrictSUIDSGID=yes",
            "LockPersonality=yes",
        ]
    lines += [
        "",
        "[Install]",
        f"WantedBy={'default.target' if options.user_unit else 'multi-user.target'}",
        "",
    ]
    return "\n".join(lines)


def unit_path(options: UnitOptions, unit_dir: Path | None = None) -> Path:
    if unit_dir is not None:
        return Path(unit_dir) / f"{options.name}.service"
    if options.user_unit:
        config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(config) / "systemd" / "user" / f"{options.name}.service"
    return SYSTEM_UNIT_DIR / f"{options.name}.service"


def _ensure_user(name: str) -> bool:
    """Create the system user (in group video) if missing; True if it was created."""
    try:
        pwd.getpwnam(name)
        return False
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if os.geteuid() != 0 or useradd is None:
        raise ConfigError(f"user {name!r} does not exist; run as root to create it, or pass "
                          "--service-user with an existing user")
    groups = ["--groups", "video"] if _group_exists("video") else []
    subprocess.run([useradd, "--system", "--no-create-home", "--user-group",
                    "--shell", "/usr/sbin/nologin", *groups, name], check=True)
    return True


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def install_unit(options: UnitOptions, unit_dir: Path | None = None,
                 create_user: bool = True, reload: bool = True) -> InstallResult:
    """Write the unit (atomically), create the user and output directory, reload systemd."""
    text = render_unit(options)
    path = unit_path(options, unit_dir)
    output = default_output_dir(options)
    created = False
    service_user = None if options.user_unit else options.service_user
    if service_user is not None and create_user:
        created = _ensure_user(service_user)
    output.mkdir(parents=True, exist_ok=True)
    if service_user is not None and os.geteuid() == 0:
        entry = pwd.getpwnam(service_user)
        os.chown(output, entry.pw_uid, entry.pw_gid)
    write_text(path, text)
    os.chmod(path, 0o644)
    scope = ["--user"] if options.user_unit else []
    reloaded = False
    if reload and unit_dir is None and _systemd_running():
        done = subprocess.run(["systemctl", *scope, "daemon-reload"], capture_output=True)
        reloaded = done.returncode == 0
    journal = (["journalctl", "--user", "-u", options.name, "-f"] if options.user_unit
               else ["journalctl", "-u", options.name, "-f"])
    sudo = "" if options.user_unit or getpass.getuser() == "root" else "sudo "
    steps = [f"{sudo}systemctl {' '.join(scope + ['daemon-reload'])}".strip(),
             f"{sudo}systemctl {' '.join(scope + ['enable', '--now', options.name])}",
             f"systemctl {' '.join(scope + ['status', options.name])}",
             " ".join(journal)]
    return InstallResult(str(path), text, service_user, str(output), created, reloaded, steps)
