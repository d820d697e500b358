"""Build the instruction-counting QEMU plugin (benchmarks/arm/insn_count.c) with gcc.

The plugin API header ``qemu-plugin.h`` must match the installed QEMU. Debian
bookworm ships no package with it, so when it is not on the system the header is
taken from the Debian *source* package of the installed ``qemu-user`` (the exact
same version), fetched with ``apt-get source --download-only`` from a private
deb-src list (the machine's apt configuration is not changed).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from edgepose.errors import RuntimeNotAvailable

SOURCE = Path(__file__).resolve().parents[2] / "benchmarks" / "arm" / "insn_count.c"
SYSTEM_HEADERS = (Path("/usr/include/qemu-plugin.h"), Path("/usr/include/qemu/qemu-plugin.h"))
DEFAULT_MIRROR = "http://deb.debian.org/debian"
MIRROR = os.environ.get("EDGEPOSE_DEBIAN_MIRROR", DEFAULT_MIRROR)
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeNotAvailable(f"`{' '.join(cmd[:4])} ...` failed: {' | '.join(tail)}")
    return proc.stdout


def qemu_source_version() -> tuple[str, str]:
    """(Debian source version, binary version) of the installed qemu-user package."""
    out = _run(["dpkg-query", "-W", "-f=${source:Version} ${Version}", "qemu-user"])
    source, binary = out.split()
    return source, binary


def _host_suite() -> str:
    """The host's Debian codename: qemu-user was installed from that suite."""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    raise RuntimeNotAvailable("cannot tell the Debian release", "/etc/os-release")


def fetch_header(workdir: Path) -> Path:
    """Find ``qemu-plugin.h`` on the system, or extract it from qemu's Debian source package.

    Raises:
        RuntimeNotAvailable: ``apt-get source qemu`` gave no orig tarball, or it holds no
            qemu-plugin.h.
    """
    env_header = os.environ.get("EDGEPOSE_QEMU_PLUGIN_H")
    for candidate in ((Path(env_header),) if env_header else ()) + SYSTEM_HEADERS:
        if candidate.is_file():
            return candidate
    header = workdir / "qemu-plugin.h"
    if header.is_file():
        return header
    source_version, _ = qemu_source_version()
    workdir.mkdir(parents=True, exist_ok=True)
    lists = workdir / "apt-lists"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    sources = workdir / "sources.list"
    suite = _host_suite()
    lines = [f"deb-src [signed-by={KEYRING}] {MIRROR} {suite} main"]
    if MIRROR == DEFAULT_MIRROR:  # security updates live in a sibling archive
        lines.append(f"deb-src [signed-by={KEYRING}] {MIRROR}-security {suite}-security main")
    sources.write_text("\n".join(lines) + "\n")
    apt = ["apt-get", "-q", "-o", f"Dir::Etc::SourceList={sources}",
           "-o", "Dir::Etc::SourceParts=/dev/null", "-o", f"Dir::State::Lists={lists}",
           "-o", "APT::Sandbox::User=root"]
    _run(apt + ["update"])
    _run(apt + ["source", "--download-only", f"qemu={source_version}"], cwd=workdir)
    tarballs = sorted(workdir.glob("qemu_*.orig.tar.*"))
    if not tarballs:
        raise RuntimeNotAvailable(f"apt-get source qemu={source_version} gave no orig tarball",
                                  workdir)
    with tarfile.open(tarballs[0]) as tar:
        member = next((m for m in tar if m.name.endswith("include/qemu/qemu-plugin.h")), None)
        if member is None:
            raise RuntimeNotAvailable("qemu-plugin.h not in the source tarball", tarballs[0])
        header.write_bytes(tar.extractfile(member).read())
    for leftover in workdir.glob("qemu_*"):
        leftover.unlink()
    return header


def build_plugin(cache_dir: Path, force: bool = False) -> Path:
    """Compile insn_count.c into ``cache_dir/plugin/insn_count-<qemu version>-<source hash>.so``
    (cached per source content).

    Raises:
        RuntimeNotAvailable: gcc is not installed, or qemu-plugin.h cannot be found.
    """
    if shutil.which("gcc") is None:
        raise RuntimeNotAvailable("gcc not found: apt-get install gcc")
    _, binary_version = qemu_source_version()
    workdir = Path(cache_dir) / "plugin"
    tag = binary_version.replace(":", "_").replace("+", "_").replace("~", "_")
    # Named by the source's content, not compared by mtime: checkouts of different
    # versions of insn_count.c share this cache and must not rebuild each other's plugin.
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    target = workdir / f"insn_count-{tag}-{digest}.so"
    if target.is_file() and not force:
        return target
    header = fetch_header(workdir)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    _run(["gcc", "-O2", "-Wall", "-Werror", "-shared", "-fPIC", f"-I{header.parent}",
          "-o", str(tmp), str(SOURCE)])
    os.replace(tmp, target)
    return target
