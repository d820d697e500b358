"""What machine a benchmark ran on, and whether it ran at full speed.

Read from ``/proc`` and ``/sys`` (and ``vcgencmd`` on a Raspberry Pi when it is
installed); every fact that cannot be read is ``None`` rather than a guess.
Timings are only comparable when the CPU governor is ``performance`` and the
SoC did not throttle, so :func:`check_conditions` turns both into warnings.
"""

from __future__ import annotations

import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# ARM "CPU part" ids of the cores found on Raspberry Pi and similar boards.
_ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55",
              "0xd07": "Cortex-A57", "0xd08": "Cortex-A72", "0xd09": "Cortex-A73",
              "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76", "0xd0c": "Neoverse-N1",
              "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78", "0xd4f": "Neoverse-V2",
              "0xc07": "Cortex-A7", "0xc0f": "Cortex-A15"}
# The ISA extensions that change which XNNPACK / oneDNN kernels run (so the figures):
# x86 AVX2, AVX-512, VNNI, BF16, AMX; ARM dot product (SDOT), int8 matrix multiply,
# fp16 arithmetic, BF16, SVE. Names as Linux prints them in /proc/cpuinfo.
KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                "amx_int8", "asimddp", "i8mm", "asimdhp", "bf16", "sve")
_MODEL_FILES = ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model")
_THERMAL = "/sys/class/thermal/thermal_zone0/temp"
# vcgencmd get_throttled bits: 0-3 happening now, 16-19 happened since boot.
_THROTTLE_BITS = {0: "under-voltage", 1: "ARM frequency capped", 2: "currently throttled",
                  3: "soft temperature limit"}


@dataclass
class Conditions:
    """SoC state at one moment (Pi facts are None elsewhere)."""

    temperature_c: float | None
    throttled: str | None  # vcgencmd get_throttled value, e.g. "0x0"
    governors: list[str]
    load_average: float | None = None  # 1-minute load average (runnable tasks), or None
    # Cores' worth of CPU all processes used in the BUSY_WINDOW_S just before (Linux
    # /proc/stat), or None: unlike the load average it does not lag a minute behind.
    cpu_busy: float | None = None


@dataclass
class DeviceInfo:
    """The machine, its software and its state before and after a run."""

    machine: str  # platform.machine()
    slug: str  # machine_slug(): folder name for per-device results
    cpu_model: str
    architecture: str
    cores: int
    system: str
    python: str
    runtime: str | None  # interpreter package, e.g. "ai_edge_litert 2.3.0"
    numpy: str
    board: str | None  # e.g. "Raspberry Pi 4 Model B Rev 1.4"
    governor: str | None  # one value, or "mixed: a, b", or None when unreadable
    before: Conditions | None = None
    after: Conditions | None = None
    warnings: list[str] = field(default_factory=list)
    cpu_id: str | None = None  # cpu_id(): which silicon, where cpu_model hides it


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip("\x00\n ")
    except OSError:
        return None


def cpu_model() -> str:
    """A human CPU name: x86 "model name", else the ARM core type, else the processor string."""
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware"):
        match = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if match and key == "model name":
            return match.group(1).strip()
    parts = re.findall(r"^CPU part\s*:\s*(0x[0-9a-f]+)", text, re.MULTILINE | re.IGNORECASE)
    if parts:
        names = sorted({_ARM_PARTS.get(p.lower(), p) for p in parts})
        return "ARM " + "+".join(names)
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The ISA extensions the first CPU of ``/proc/cpuinfo`` lists (x86 ``flags``, ARM
    ``Features``); ``cpuinfo``: the file's text (read when None). Empty when unreadable."""
    text = (_read("/proc/cpuinfo") or "") if cpuinfo is None else cpuinfo
    found = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.MULTILINE)
    return set(found.group(1).split()) if found else set()


def cpu_id(cpuinfo: str | None = None) -> str | None:
    """Which CPU generation and kernel-relevant ISA this is, from ``/proc/cpuinfo``.

    A VM often shows one ``model name`` ("AMD EPYC") for different silicon (Zen 4 and
    Zen 5 differ twofold in AVX-512 throughput), so results recorded under one
    :func:`machine_slug` can come from different CPUs; this tells them apart. x86:
    ``x86 family 25 model 17 stepping 1; avx2 avx512f ...``; ARM: ``arm 0x41 part 0xd0b
    (Cortex-A76) r4p1; asimddp ...``; the flags are those of :data:`KERNEL_FLAGS` the
    first CPU reports. ``cpuinfo``: the file's text (read when None). None when the
    file says neither.
    """
    text = _read("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    if not text:
        return None

    def first(key: str) -> str | None:
        match = re.search(rf"^{key}\s*:\s*(\S+)", text, re.MULTILINE | re.IGNORECASE)
        return match.group(1) if match else None

    flags = cpu_flags(text)
    isa = " ".join(f for f in KERNEL_FLAGS if f in flags) or "no listed SIMD extensions"
    if first("cpu family") is not None:
        return (f"x86 family {first('cpu family')} model {first('model')} "
                f"stepping {first('stepping')}; {isa}")
    part = first("CPU part")
    if part is not None:
        name = _ARM_PARTS.get(part.lower())
        variant, revision = first("CPU variant"), first("CPU revision")
        rev = (f" r{int(variant, 16)}p{revision}" if variant and revision else "")
        return (f"arm {first('CPU implementer')} part {part}"
                f"{f' ({name})' if name else ''}{rev}; {isa}")
    return None


def board_model() -> str | None:
    """The device-tree model string (e.g. a Raspberry Pi's), if the board has one."""
    for path in _MODEL_FILES:
        value = _read(path)
        if value:
            return value
    return None


def cpu_governors() -> list[str]:
    """The scaling governor of each CPU that exposes one (empty in most VMs)."""
    values = []
    for path in sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor")):
        value = _read(str(path))
        if value:
            values.append(value)
    return values


def soc_temperature() -> float | None:
    """SoC temperature in degrees C from thermal zone 0, or None."""
    value = _read(_THERMAL)
    try:
        return int(value) / 1000.0 if value else None
    except ValueError:
        return None


def throttled_flags() -> str | None:
    """``vcgencmd get_throttled`` (Raspberry Pi firmware), or None when not available."""
    tool = shutil.which("vcgencmd")
    if tool is None:
        return None
    try:
        out = subprocess.run([tool, "get_throttled"], capture_output=True, text=True,
                             timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"throttled=(0x[0-9a-fA-F]+)", out)
    return match.group(1) if match else None


def describe_throttled(value: str) -> list[str]:
    """Names of the throttling conditions set in a ``get_throttled`` value."""
    bits = int(value, 16)
    now = [name for bit, name in _THROTTLE_BITS.items() if bits & (1 << bit)]
    past = [name for bit, name in _THROTTLE_BITS.items() if bits & (1 << (bit + 16))]
    return [f"{n} (now)" for n in now] + [f"{n} (since boot)" for n in past]


def load_average() -> float | None:
    """The 1-minute load average (``os.getloadavg``), or None where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


# How long cpu_busy() watches /proc/stat: long enough for a few scheduler ticks (100 Hz
# USER_HZ counts 25 per core), short enough to add little to a bench run.
BUSY_WINDOW_S = 0.25


def _proc_stat() -> tuple[int, int, int]:
    """``(total, idle, cpus)`` jiffies of /proc/stat's aggregate line (idle includes iowait)."""
    with open("/proc/stat", encoding="ascii") as fh:
        lines = fh.read().splitlines()
    values = [int(v) for v in lines[0].split()[1:9]]  # user..steal; guest is inside user
    cpus = sum(1 for line in lines if re.match(r"cpu\d+ ", line))
    return sum(values), values[3] + values[4], cpus


def cpu_busy(window_s: float = BUSY_WINDOW_S) -> float | None:
    """Cores' worth of CPU time every process used during the next ``window_s`` seconds.

    Read from /proc/stat (proc(5): jiffies per state, summed over CPUs) before and
    after a sleep, so the caller's own idle process does not count: called before a
    bench starts or after it ends, it measures the *other* work on the machine, now,
    where the 1-minute load average still counts a run that ended seconds ago.
    None where /proc/stat is missing (not Linux).
    """
    try:
        total0, idle0, cpus = _proc_stat()
        time.sleep(window_s)
        total1, idle1, _ = _proc_stat()
    except (OSError, ValueError, IndexError):
        return None
    elapsed = total1 - total0
    if elapsed <= 0 or cpus == 0:
        return None
    return round((1.0 - (idle1 - idle0) / elapsed) * cpus, 2)


def conditions() -> Conditions:
    """Read temperature, throttling flags, governors, the load average and the CPU use of
    other work now (:func:`cpu_busy`, which takes ``BUSY_WINDOW_S``)."""
    return Conditions(soc_temperature(), throttled_flags(), cpu_governors(), load_average(),
                      cpu_busy())


def _governor(values: list[str]) -> str | None:
    if not values:
        return None
    unique = sorted(set(values))
    return unique[0] if len(unique) == 1 else "mixed: " + ", ".join(unique)


def _slugify(text: str) -> str:
    text = re.sub(r"\((?:R|TM|tm|r)\)", "", text)
    text = re.sub(r"\b(CPU|Processor|@.*)$", "", text.strip())
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def machine_slug() -> str:
    """A stable folder name for results of this kind of machine: ``<arch>-<cpu or board>``.

    ``platform.node()`` changes between containers, so the slug is built from the
    architecture and the board model (Pi) or CPU model instead, e.g.
    ``x86_64-intel-xeon`` or ``aarch64-raspberry-pi-4-model-b``.
    """
    board = board_model()
    if board:
        board = re.sub(r"\s+Rev\s+[\d.]+$", "", board)
    name = board or cpu_model()
    return f"{platform.machine().lower() or 'unknown'}-{_slugify(name) or 'cpu'}"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)


def current_rss_mb() -> float | None:
    """Current resident set size of this process in MiB (Linux), or None."""
    statm = _read("/proc/self/statm")
    if not statm:
        return None
    return int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def device_info(runtime: str | None = None, before: Conditions | None = None,
                after: Conditions | None = None) -> DeviceInfo:
    """Describe this machine; with ``before``/``after``, also warn about throttling."""
    import numpy

    governors = (before.governors if before else None) or cpu_governors()
    info = DeviceInfo(machine=platform.machine(), slug=machine_slug(), cpu_model=cpu_model(),
                      architecture=platform.architecture()[0] + " " + platform.machine(),
                      cores=os.cpu_count() or 1,
                      system=f"{platform.system()} {platform.release()}",
                      python=platform.python_version(), runtime=runtime,
                      numpy=numpy.__version__, board=board_model(),
                      governor=_governor(governors), before=before, after=after,
                      cpu_id=cpu_id())
    info.warnings = check_conditions(info)
    return info


def check_conditions(info: DeviceInfo) -> list[str]:
    """Warnings that make the timings less trustworthy."""
    warnings = []
    if info.governor is None:
        warnings.append("CPU governor unknown (no cpufreq in /sys): timings may vary with "
                        "frequency scaling")
    elif info.governor != "performance":
        warnings.append(f"CPU governor is {info.governor!r}, not 'performance': set it with "
                        "`echo performance | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/"
                        "scaling_governor` for stable timings")
    if info.after is not None and info.after.governors and info.before is not None \
            and info.after.governors != info.before.governors:
        warnings.append("CPU governor changed during the run")
    for moment in (info.before, info.after):
        if moment is not None and moment.throttled and int(moment.throttled, 16) & 0xF:
            warnings.append(f"SoC throttled during the run ({moment.throttled}: "
                            f"{', '.join(describe_throttled(moment.throttled))})")
            break
    if (info.before is not None and info.after is not None and info.before.throttled
            and info.after.throttled and info.before.throttled != info.after.throttled):
        warnings.append(f"throttling flags changed during the run ({info.before.throttled} -> "
                        f"{info.after.throttled})")
    return warnings
