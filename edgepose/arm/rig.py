"""The emulated-Pi rig: a cached aarch64 Debian root with Python and the device side.

Layout under the cache dir (``~/.cache/edgepose/arm``, or ``EDGEPOSE_ARM_CACHE``)::

    <distro>/rootfs/            debootstrap --foreign minbase + python3.X, .debs unpacked
    <distro>/rootfs/opt/site/   aarch64 wheels: ai-edge-litert, numpy, pillow, click, rich
    <distro>/rootfs/opt/edgepose/  a copy of edgepose's device side (re-synced every run)
    <distro>/pi4/, pi5/         views for ``qemu -L``: symlinks into rootfs/ plus the
                                board's own proc/cpuinfo
    plugin/insn_count-*.so      the instruction-counting QEMU plugin (one per source version)

QEMU user mode resolves a guest path P to ``<-L dir>/P`` when that exists and to
the host's P otherwise. So the guest reads the board's cpuinfo from the view,
the host's /sys (XNNPACK's cpuinfo library needs it, or it silently falls back to
the builtin kernels), and model files and job folders by their host paths.
No chroot, no second debootstrap stage, no root needed at run time.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgepose.arm.cpus import PI_CPUS, pi_cpu
from edgepose.errors import ConfigError, RuntimeNotAvailable

DISTROS = {"3.11": "bookworm", "3.13": "trixie"}
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# pip finds no aarch64 wheel for several packages unless 2_27 is listed explicitly.
WHEEL_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux2014_aarch64")
# The device side's dependencies (pyproject's base install). The interpreter and numpy
# are pinned to the host's versions so that ARM and x86 run the same kernels.
PINNED = ("ai-edge-litert", "numpy")
UNPINNED = ("pillow", "click", "rich")
HOST_TOOLS = {"qemu-aarch64": "qemu-user", "debootstrap": "debootstrap", "gcc": "gcc"}
STAMP = ".edgepose-rig.json"
VIEW_ENTRIES = ("bin", "etc", "lib", "lib64", "opt", "sbin", "usr")
# Host-only parts of the package never go to the device (they may import TensorFlow).
HOST_ONLY = {"train", "__pycache__"}


def default_cache_dir() -> Path:
    """``$EDGEPOSE_ARM_CACHE`` or ``~/.cache/edgepose/arm``."""
    env = os.environ.get("EDGEPOSE_ARM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "edgepose" / "arm"


@dataclass(frozen=True)
class Rig:
    """Where one distro's emulated root lives; see the module docstring for the layout."""

    cache_dir: Path
    python: str

    @property
    def distro(self) -> str:
        return DISTROS[self.python]

    @property
    def home(self) -> Path:
        return self.cache_dir / self.distro

    @property
    def root(self) -> Path:
        return self.home / "rootfs"

    @property
    def site(self) -> Path:
        return self.root / "opt" / "site"

    @property
    def code(self) -> Path:
        return self.root / "opt" / "edgepose"

    @property
    def ready(self) -> bool:
        return (self.root / STAMP).is_file()

    def view(self, pi: int) -> Path:
        """The ``qemu -L`` directory of Pi ``pi``."""
        return self.home / f"pi{pi}"

    def launcher(self, pi: int) -> Path:
        """Host shell script that runs the guest Python on Pi ``pi`` (the guest's
        sys.executable)."""
        return self.view(pi) / "usr" / "bin" / f"python{self.python}-pi{pi}"

    def interpreter(self, pi: int) -> Path:
        """Host path of the guest's python3.X, through the Pi's view."""
        return self.view(pi) / "usr" / "bin" / f"python{self.python}"

    def stamp(self) -> dict:
        return json.loads((self.root / STAMP).read_text())

    @property
    def pythonpath(self) -> str:
        """PYTHONPATH as the guest sees it."""
        return "/opt/edgepose:/opt/site"


@dataclass
class SetupResult:
    """What ``setup_rig`` built or found."""

    distro: str
    python: str
    root: Path
    pi_views: list[Path]
    plugin: Path | None
    packages: dict[str, str]
    cached: bool
    seconds: float
    steps: list[str] = field(default_factory=list)


def rig_for(python: str, cache_dir: str | Path | None = None) -> Rig:
    """The rig of guest Python ``python`` (3.11 -> bookworm, 3.13 -> trixie); not checked.

    Raises:
        ConfigError: an unsupported guest Python (the message lists them).
    """
    if python not in DISTROS:
        raise ConfigError(f"unsupported guest Python {python!r}: choose "
                          f"{' or '.join(DISTROS)}")
    return Rig(Path(cache_dir) if cache_dir else default_cache_dir(), python)


def require_rig(pi: int, python: str | None = None,
                cache_dir: str | Path | None = None) -> Rig:
    """The set-up rig for Pi ``pi``, or RuntimeNotAvailable saying how to set it up.

    Raises:
        RuntimeNotAvailable: qemu-aarch64 is not installed, or the rig is not set up (the message
            gives the ``edgepose arm setup`` command).
    """
    cpu = pi_cpu(pi)
    rig = rig_for(python or cpu.default_python, cache_dir)
    if not rig.ready:
        raise RuntimeNotAvailable(f"emulated Pi {cpu.pi} rig (Python {rig.python}) is not set "
                                  f"up: run `edgepose arm setup --pi {cpu.pi} --python "
                                  f"{rig.python}`", rig.root)
    missing = missing_host_tools()
    if "qemu-aarch64" in missing:
        raise RuntimeNotAvailable("qemu-aarch64 not found: apt-get install qemu-user")
    return rig


def missing_host_tools() -> list[str]:
    """Host commands the rig needs that are not on PATH."""
    return [tool for tool in HOST_TOOLS if shutil.which(tool) is None]


def install_host_tools() -> None:
    """``apt-get install`` qemu-user, debootstrap and gcc (needs root).

    Raises:
        RuntimeNotAvailable: not root: the message gives the ``sudo apt-get install`` line.
    """
    packages = sorted({HOST_TOOLS[t] for t in missing_host_tools()})
    if not packages:
        return
    if os.geteuid() != 0:
        raise RuntimeNotAvailable(f"missing {', '.join(packages)}; run as root or "
                                  f"`sudo apt-get install {' '.join(packages)}`")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _check(["apt-get", "update", "-q"], env=env)
    _check(["apt-get", "install", "-y", "-q", *packages], env=env)


def _check(cmd: list[str], **kwargs) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise RuntimeNotAvailable(f"`{' '.join(cmd[:3])} ...` failed (exit "
                                  f"{proc.returncode}): {tail}")
    return proc.stdout


def _host_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _bootstrap(rig: Rig, mirror: str) -> None:
    """debootstrap the first stage and unpack every downloaded .deb (no second stage)."""
    if os.geteuid() != 0:
        raise RuntimeNotAvailable("debootstrap needs root (run `edgepose arm setup` with sudo)")
    tmp = rig.home / "rootfs.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    _check(["debootstrap", "--arch=arm64", "--foreign", "--variant=minbase",
            f"--include=python{rig.python}", rig.distro, str(tmp), mirror])
    archives = tmp / "var" / "cache" / "apt" / "archives"
    for deb in sorted(archives.glob("*.deb")):
        _check(["dpkg-deb", "-x", str(deb), str(tmp)])
        deb.unlink()
    for name in ("passwd", "group"):  # what base-passwd's postinst would have written
        if not (tmp / "etc" / name).exists():
            shutil.copyfile(tmp / "usr/share/base-passwd" / f"{name}.master", tmp / "etc" / name)
    if not (tmp / "usr" / "bin" / f"python{rig.python}").exists():
        raise RuntimeNotAvailable(f"debootstrap of {rig.distro} gave no python{rig.python}", tmp)
    shutil.rmtree(rig.root, ignore_errors=True)
    os.replace(tmp, rig.root)


def _install_wheels(rig: Rig) -> dict[str, str]:
    """pip-install the aarch64 wheels of the device side's dependencies into rootfs/opt/site."""
    requirements = []
    for name in PINNED:
        version = _host_version(name)
        requirements.append(f"{name}=={version}" if version else name)
    requirements += list(UNPINNED)
    target = rig.site.with_name("site.partial")
    shutil.rmtree(target, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--only-binary=:all:", "--python-version", rig.python, "--target", str(target)]
    for tag in WHEEL_PLATFORMS:
        cmd += ["--platform", tag]
    _check(cmd + requirements)
    shutil.rmtree(rig.site, ignore_errors=True)
    os.replace(target, rig.site)
    installed = {}
    for dist in importlib.metadata.distributions(path=[str(rig.site)]):
        installed[dist.metadata["Name"].lower()] = dist.version
    return dict(sorted(installed.items()))


def sync_device_code(rig: Rig) -> int:
    """Mirror edgepose's device side into rootfs/opt/edgepose; returns files copied.

    Copies every module except host-only folders, so a device-side module that
    imports TensorFlow fails inside the emulator exactly as it would on a Pi.
    """
    source = Path(__file__).resolve().parents[1]
    target = rig.code / "edgepose"
    copied = 0
    wanted: set[Path] = set()
    for path in source.rglob("*"):
        rel = path.relative_to(source)
        if HOST_ONLY & set(rel.parts) or not path.is_file() or path.suffix == ".pyc":
            continue
        wanted.add(rel)
        dest = target / rel
        if dest.is_file() and dest.read_bytes() == path.read_bytes():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        # another edgepose process may sync the same rig at the same time: replace atomically
        # and tolerate files it removed first
        partial = dest.with_name(f".{dest.name}.{os.getpid()}")
        shutil.copyfile(path, partial)
        os.replace(partial, dest)
        copied += 1
    if target.is_dir():
        for path in sorted(target.rglob("*"), reverse=True):
            rel = path.relative_to(target)
            if path.is_file() and rel not in wanted and "__pycache__" not in rel.parts:
                path.unlink(missing_ok=True)
    script = rig.root / "usr" / "bin" / "edgepose"
    if not script.is_file():  # the console script `pip install edgepose` gives a Pi
        script.write_text(f"#!/usr/bin/python{rig.python}\nimport sys\n"
                          "from edgepose.cli import main\nsys.exit(main())\n")
        script.chmod(0o755)
    if copied:
        for cache in list(target.rglob("__pycache__")):
            shutil.rmtree(cache, ignore_errors=True)
        if not rig.view(4).is_dir():
            write_views(rig)
        compile_bytecode(rig, 4, ["opt/edgepose"])
    return copied


def write_views(rig: Rig) -> list[Path]:
    """(Re)create the per-Pi ``-L`` views: links into the root, the board's cpuinfo, launcher.

    Only the system folders are linked; /tmp, /dev, /sys, /proc (but cpuinfo) stay
    the host's. Links are absolute host paths: a guest that resolves one (pytest does)
    follows it to a host path that exists, where a relative link would point nowhere.
    """
    cores = os.cpu_count() or 1  # the guest sees the host's /sys: same processor count
    views = []
    for pi, cpu in PI_CPUS.items():
        view = rig.view(pi)
        view.mkdir(parents=True, exist_ok=True)
        for link in view.iterdir():
            if link.is_symlink():
                link.unlink()
        for name in VIEW_ENTRIES:
            if os.path.lexists(rig.root / name):
                (view / name).symlink_to(rig.root.resolve() / name)
        (view / "proc").mkdir(exist_ok=True)
        (view / "proc" / "cpuinfo").write_text(cpu.cpuinfo(cores))
        launcher = rig.launcher(pi)
        launcher.write_text(
            "#!/bin/sh\n"
            f"# The emulated Pi {pi}'s Python (edgepose arm): a process the guest starts with\n"
            "# sys.executable comes back here, on the same CPU model and root.\n"
            f"exec qemu-aarch64 -cpu {cpu.qemu_cpu} -L {view} -0 \"$0\" "
            f"{rig.interpreter(pi)} \"$@\"\n")
        launcher.chmod(0o755)
        views.append(view)
    return views


def emulator_command(rig: Rig, pi: int, args: list[str], plugin: Path | None = None,
                     counts: Path | None = None,
                     profile: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run guest Python with ``args`` on Pi ``pi``.

    ``plugin`` loads the instruction-count plugin writing to ``counts``, and with
    ``profile`` also its per-block profile (benchmarks/arm/insn_count.c).
    """
    cpu = pi_cpu(pi)
    # argv[0] is the launcher, so the guest's sys.executable can start child processes.
    cmd = ["qemu-aarch64", "-cpu", cpu.qemu_cpu, "-L", str(rig.view(pi)),
           "-0", str(rig.launcher(pi))]
    if plugin is not None:
        cmd += ["-plugin", f"{plugin},out={counts}"
                + (f",profile={profile}" if profile is not None else "")]
    cmd += [str(rig.interpreter(pi)), *args]
    if shutil.which("setarch"):
        # No address randomisation: the same run takes the same code path every time.
        cmd = ["setarch", platform.machine(), "-R", *cmd]
    # Bytecode is compiled once at setup (compile_bytecode); the guest never writes it,
    # so every run imports exactly the same way.
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
           "PYTHONPATH": rig.pythonpath, "PYTHONHASHSEED": "0", "PYTHONNOUSERSITE": "1",
           "PYTHONDONTWRITEBYTECODE": "1"}
    return cmd, env


def compile_bytecode(rig: Rig, pi: int, folders: list[str]) -> None:
    """Compile the guest's .py files to .pyc with the guest's own Python.

    Guest writes to absolute paths that do not exist in the root go to the host's
    paths (QEMU maps only existing files), so compileall runs with the view as the
    working directory and *relative* folder names.

    Raises:
        RuntimeNotAvailable: compileall failed in the emulator (the message ends with its output).
    """
    cmd, env = emulator_command(rig, pi, ["-m", "compileall", "-q", "-j", "1", *folders])
    env.pop("PYTHONDONTWRITEBYTECODE")
    proc = subprocess.run(cmd, env=env, cwd=rig.view(pi), capture_output=True, text=True)
    if proc.returncode not in (0, 1):  # 1: some test file in a wheel has a syntax error
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeNotAvailable(f"compileall in the emulator failed: {tail}", rig.root)


def setup_rig(pi: int = 5, python: str | None = None, cache_dir: str | Path | None = None,
              force: bool = False, install_tools: bool = False, with_plugin: bool = True,
              mirror: str | None = None,
              progress: Callable[[str], None] | None = None) -> SetupResult:
    """Build (or find cached) the emulated root for Pi ``pi`` and guest Python ``python``.

    From scratch a few minutes: debootstrap, wheels, bytecode compiled by the guest,
    plugin. Cached: a re-sync of the device-side code only. ``force`` rebuilds it all.
    ``progress`` hears one line as each stage starts (with the seconds so far).

    Raises:
        RuntimeNotAvailable: host tools (qemu-user, debootstrap, gcc) are missing, or a stage fails.
    """
    started = time.monotonic()

    def stage(text: str) -> None:
        if progress is not None:
            progress(f"[{time.monotonic() - started:6.1f} s] {text}")

    cpu = pi_cpu(pi)
    rig = rig_for(python or cpu.default_python, cache_dir)
    steps = []
    if install_tools:
        stage("apt-get install of the missing host tools")
        install_host_tools()
    missing = missing_host_tools()
    if missing:
        packages = " ".join(sorted({HOST_TOOLS[t] for t in missing}))
        raise RuntimeNotAvailable(f"missing {', '.join(missing)}: apt-get install {packages} "
                                  "(or `edgepose arm setup --install-tools`)")
    cached = rig.ready and not force
    if not cached:
        (rig.root / STAMP).unlink(missing_ok=True)
        stage(f"debootstrap {rig.distro} arm64 + python{rig.python} (the longest stage)")
        _bootstrap(rig, mirror or os.environ.get("EDGEPOSE_DEBIAN_MIRROR", DEFAULT_MIRROR))
        steps.append(f"debootstrap {rig.distro} arm64 + python{rig.python}")
        stage("pip download of the aarch64 wheels (ai-edge-litert, numpy, pillow, ...)")
        packages = _install_wheels(rig)
        steps.append(f"pip --platform aarch64: {len(packages)} packages")
        write_views(rig)
        stage("compiling bytecode with the emulated guest Python")
        compile_bytecode(rig, cpu.pi, [f"usr/lib/python{rig.python}", "opt/site"])
        steps.append("bytecode compiled by the guest Python")
        (rig.root / STAMP).write_text(json.dumps(
            {"distro": rig.distro, "python": rig.python, "packages": packages,
             "built": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))
    stage("syncing edgepose's device-side code into the root")
    copied = sync_device_code(rig)
    steps.append(f"device code synced ({copied} files changed)")
    views = write_views(rig)
    plugin = None
    if with_plugin:
        from edgepose.arm.plugin import build_plugin

        stage("building the instruction-count plugin")
        plugin = build_plugin(rig.cache_dir, force=force)
        steps.append(f"plugin {plugin.name}")
    stage("done")
    return SetupResult(distro=rig.distro, python=rig.python, root=rig.root, pi_views=views,
                       plugin=plugin, packages=rig.stamp()["packages"], cached=cached,
                       seconds=round(time.monotonic() - started, 1), steps=steps)
