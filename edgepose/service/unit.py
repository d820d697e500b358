"""``edgepose service install``: a hardened systemd unit for ``edgepose serve``.

The unit is ``Type=notify`` with a watchdog (the service reports ``READY=1``
and pings ``WATCHDOG=1`` only while frames are classified), restarts on
failure, runs as a dedicated system user in the ``video`` group, and sees the
file system read-only except for its output directory.

A system unit is sandboxed to what a camera classifier needs: no
capabilities, only the ``@system-service`` system calls, only unix, IP and
netlink sockets, IP traffic to loopback only (unless the HTTP interface or an
MQTT broker is elsewhere, or ``allow_ip`` says where), and of the devices only
the camera's: V4L2 nodes (``/dev/video*``, which include the Pi's codec and
ISP nodes, and ``/dev/v4l-subdev*``), media controllers (``/dev/media*``) and
DMA heaps (``/dev/dma_heap/*``). ``systemd-analyze security`` rates it below
2.0 ("OK"; the tests check it). The sandbox hides ``/tmp`` (PrivateTmp) and
``/home`` (ProtectHome): :func:`unreachable_paths` finds a model or Python
that would be invisible, and :func:`install_unit` refuses to install a unit
that could not start.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
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
    #: Addresses (CIDR, or "any") the service may talk IP to besides loopback; None: derived
    #: from --http and --mqtt (loopback only when both are local).
    allow_ip: list[str] | None = None


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
    warnings: list[str] = field(default_factory=list)


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
    """The full ``edgepose serve`` command line the unit runs (absolute paths).

    Raises:
        DataError: the model or pose model file does not exist.
    """
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


_HOMES = ("/home/", "/root/", "/run/user/")
_TMPS = ("/tmp/", "/var/tmp/")


def _under_home(paths: list[str]) -> bool:
    return any(p.startswith(_HOMES) for p in paths)


def _needed_paths(options: UnitOptions) -> dict[str, Path]:
    """What the service must be able to read: model, pose models, the Python it runs."""
    needed = {"model": Path(options.model).absolute()}
    for what, path in (("pose model", options.pose_model),
                       ("pose detector", options.pose_detector)):
        if path is not None:
            needed[what] = Path(path).absolute()
    needed["edgepose command"] = Path(edgepose_command()[0])
    needed["Python interpreter"] = Path(sys.executable).resolve()
    return needed


def unreachable_paths(options: UnitOptions) -> list[str]:
    """One line per file the unit could not see, or an empty list.

    ``PrivateTmp=yes`` gives the service an empty ``/tmp`` and ``/var/tmp``, so
    a model there is "not found" at every start. A system unit also hides
    ``/home`` and ``/root`` unless the model or Python lives there (then it
    makes them read-only instead, see :func:`render_unit`); that case is
    reported only for the output directory, which must be writable.
    """
    problems = [f"the {what} {path} is under /{path.parts[1]}, which the service cannot see "
                f"(PrivateTmp=yes): move it elsewhere, e.g. /opt or /var/lib"
                for what, path in _needed_paths(options).items()
                if str(path).startswith(_TMPS)]
    output = default_output_dir(options)
    if str(output).startswith(_TMPS):
        problems.append(f"the output directory {output} is under /{output.parts[1]}, which the "
                        "service cannot see (PrivateTmp=yes)")
    return problems


def permission_warnings(options: UnitOptions) -> list[str]:
    """Files a system unit's user may be unable to read: a folder on the way is not
    searchable, or the file not readable, by "other" users (group rights may still
    allow it, hence a warning and not a refusal). Empty for user units."""
    if options.user_unit:
        return []
    warnings = []
    for what, path in _needed_paths(options).items():
        for folder in [*reversed(path.parents), path]:
            try:
                mode = folder.stat().st_mode
            except OSError:
                break
            wanted = stat.S_IXOTH if folder != path else stat.S_IROTH
            if not mode & wanted:
                warnings.append(f"the {what} {path} may be unreadable for the service user "
                                f"{options.service_user!r}: {folder} is "
                                f"{stat.filemode(mode)} (install it under /opt)")
                break
    return warnings


def _ip_allow(options: UnitOptions) -> list[str] | None:
    """Addresses allowed besides loopback, or None for no IP restriction at all."""
    from edgepose.service.http_server import is_loopback, parse_bind

    if options.allow_ip is not None:
        return None if "any" in options.allow_ip else list(options.allow_ip)
    if options.http and not is_loopback(parse_bind(options.http)[0]):
        return None  # clients come from anywhere the user exposed it to
    if "--mqtt" in options.extra_args:
        broker = options.extra_args[options.extra_args.index("--mqtt") + 1:][:1]
        host = broker[0].split("/", 1)[0].rsplit(":", 1)[0] if broker else ""
        if not is_loopback(host):
            return None
    return []


def render_unit(options: UnitOptions) -> str:
    """The unit file text (checked by ``systemd-analyze verify`` in the tests).

    Raises:
        ConfigError: ``--watchdog-sec`` under 2 seconds.
    """
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
    # The output directory counts too: ReadWritePaths= cannot reopen a hidden /home.
    reads_home = _under_home([str(p) for p in _needed_paths(options).values()] + [str(output)])
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
            "ProtectKernelLogs=yes",
            "ProtectControlGroups=yes",
            "ProtectClock=yes",
            "ProtectHostname=yes",
            "ProtectProc=invisible",
            "RestrictSUIDSGID=yes",
            "RestrictNamespaces=yes",
            "RestrictRealtime=yes",
            "LockPersonality=yes",
            "RemoveIPC=yes",
            "UMask=0077",
            # The service needs no privilege at all: camera access is group 'video'.
            "CapabilityBoundingSet=",
            "AmbientCapabilities=",
            # unix: sd_notify; inet: HTTP and MQTT; netlink: libcamera's udev device monitor.
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
            "SystemCallFilter=@system-service",
            "SystemCallFilter=~@privileged",
            "SystemCallErrorNumber=EPERM",
            "SystemCallArchitectures=native",
            # Devices: only the camera's. video4linux covers /dev/video* (cameras, the
            # Pi's ISP and codec nodes) and /dev/v4l-subdev*; media is /dev/media*
            # (libcamera's media controllers); dma_heap is /dev/dma_heap/* (frame buffers).
            "DevicePolicy=closed",
            "DeviceAllow=char-video4linux rw",
            "DeviceAllow=char-media rw",
            "DeviceAllow=char-dma_heap rw",
        ]
        allowed = _ip_allow(options)
        if allowed is not None:
            lines += ["IPAddressDeny=any", "IPAddressAllow=localhost"]
            lines += [f"IPAddressAllow={address}" for address in allowed]
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


def _ensure_user(name: str, say: Callable[[str], None] | None = None) -> bool:
    """Create the system user (in group video) if missing; True if it was created.

    ``say`` hears what is about to be done before ``useradd`` runs.
    """
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
    if say is not None:
        say(f"creating system user {name!r} (no home, no login shell"
            f"{', in group video' if groups else ''})")
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
                 create_user: bool = True, reload: bool = True, force: bool = False,
                 say: Callable[[str], None] | None = None) -> InstallResult:
    """Write the unit (atomically), create the user and output directory, reload systemd.

    Raises :class:`ConfigError` when the unit could not see the model or the
    Python it runs (see :func:`unreachable_paths`), unless ``force`` (the
    problems are then returned as ``warnings``). ``say`` is told what is about
    to happen to the system (creating a user) before it happens. With
    ``unit_dir`` the unit is only written there: systemd does not read that
    folder, so the next steps say how to install it rather than to enable it.
    """
    text = render_unit(options)
    problems = unreachable_paths(options)
    if problems and not force:
        raise ConfigError(problems[0] + (f" (and {len(problems) - 1} more)"
                                         if len(problems) > 1 else ""))
    path = unit_path(options, unit_dir)
    output = default_output_dir(options)
    created = False
    service_user = None if options.user_unit else options.service_user
    if service_user is not None and create_user:
        created = _ensure_user(service_user, say)
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
    if unit_dir is not None:
        target = unit_path(options)
        steps = [f"{path} is not where systemd looks; to use it, copy it to {target} "
                 f"(or rerun without --unit-dir)"]
    else:
        steps = [f"{sudo}systemctl {' '.join(scope + ['daemon-reload'])}".strip(),
                 f"{sudo}systemctl {' '.join(scope + ['enable', '--now', options.name])}",
                 f"systemctl {' '.join(scope + ['status', options.name])}",
                 " ".join(journal)]
    return InstallResult(str(path), text, service_user, str(output), created, reloaded, steps,
                         problems + permission_warnings(options))
