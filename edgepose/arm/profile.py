"""Where the instructions of one invoke go on an emulated Pi: per function and per class.

:func:`profile_emulated` runs one counted invoke of a model under the instruction
plugin with ``profile=`` (benchmarks/arm/insn_count.c): the plugin writes, per
executed translation block, its start pc, how often it ran, and its instructions
by class (int8 dot products, widening int8 multiply-accumulates, requantization,
float FMAs, SIMD loads...) and multiply-accumulate lanes. The guest writes its
memory map (/proc/self/maps, guest addresses under QEMU user mode); here each pc
becomes ``library:function`` from the library's ELF symbol table (``nm``), so
XNNPACK micro-kernels show by name (``xnn_qs8_qc8w_igemm_minmax_fp32_ukernel_...``).

Host side, plain Python plus binutils' ``nm``.
"""

from __future__ import annotations

import bisect
import json
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgepose.arm.cpus import pi_cpu
from edgepose.arm.rig import emulator_command, require_rig, sync_device_code, write_views
from edgepose.errors import RuntimeNotAvailable

# In the order of enum insn_class in insn_count.c.
CLASSES = ("int8 dot product (sdot/udot)", "int8 widening MAC (smlal/smull)",
           "int MAC same width (mla/mul)", "int widen/pairwise add (sadalp/sxtl)",
           "requantization (sqrdmulh/srshl/sqxtn)", "float FMA (fmla/fmadd)",
           "float other (fmul/fadd/fmax/fcvt)", "SIMD load", "SIMD store", "SIMD other",
           "scalar (loop/address)")


@dataclass
class Profile:
    """Instructions of one invoke by function and by class (exact counts)."""

    model: str
    pi: int
    core: str
    kernels: str
    instructions: int  # the plugin's count of the region
    by_function: dict[str, int]  # "library:function" -> instructions, largest first
    by_class: dict[str, int]  # CLASSES -> instructions
    int_macs: int  # multiply-accumulate lanes executed by integer SIMD instructions
    fp_macs: int  # ... by float FMA instructions
    function_classes: dict[str, dict[str, int]] = field(default_factory=dict)  # top functions

    def share(self, name: str) -> float:
        """Fraction of the invoke's instructions spent in function ``name``."""
        return self.by_function.get(name, 0) / self.instructions if self.instructions else 0.0


def _elf_segments(path: Path) -> list[tuple[int, int, int]]:
    """(file offset, vaddr, size in file) of each PT_LOAD segment of a 64-bit ELF file."""
    data = path.read_bytes()[:4096]
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return []
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    with path.open("rb") as f:
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    segments = []
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", table,
                                                                        i * phentsize)
        if p_type == 1:
            segments.append((p_offset, p_vaddr, p_filesz))
    return segments


@lru_cache(maxsize=32)
def _symbols(path: str) -> tuple[list[int], list[str]]:
    """Sorted start addresses and demangled names of the function symbols of an ELF file."""
    if shutil.which("nm") is None:
        raise RuntimeNotAvailable("nm not found (binutils): needed to name profiled functions")
    out = subprocess.run(["nm", "--defined-only", "-n", "-C", path], capture_output=True,
                         text=True).stdout
    starts, names = [], []
    for line in out.splitlines():
        parts = line.split(maxsplit=2)
        # "$x"/"$d" are AArch64 mapping symbols (code/data starts), not functions.
        if len(parts) == 3 and parts[1] in "tTwW" and not parts[2].startswith("$"):
            starts.append(int(parts[0], 16))
            names.append(parts[2])
    return starts, names


@dataclass
class _Mapping:
    start: int
    end: int
    offset: int
    path: str


def read_maps(text: str) -> list[_Mapping]:
    """Executable file mappings of a /proc/PID/maps text, sorted by start address."""
    maps = []
    for line in text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and "x" in parts[1] and parts[5].startswith("/"):
            start, end = (int(v, 16) for v in parts[0].split("-"))
            maps.append(_Mapping(start, end, int(parts[2], 16), parts[5].strip()))
    return sorted(maps, key=lambda m: m.start)


class Symbolizer:
    """pc -> "library:function" for one guest process, given its maps and the rig's root."""

    def __init__(self, maps: list[_Mapping], root: Path):
        self.maps = maps
        self.starts = [m.start for m in maps]
        self.root = root

    def _host_file(self, guest_path: str) -> Path | None:
        for candidate in (self.root / guest_path.lstrip("/"), Path(guest_path)):
            if candidate.is_file():
                return candidate
        return None

    def name(self, pc: int) -> str:
        i = bisect.bisect_right(self.starts, pc) - 1
        if i < 0 or pc >= self.maps[i].end:
            return "?:?"
        mapping = self.maps[i]
        library = Path(mapping.path).name
        host = self._host_file(mapping.path)
        if host is None:
            return f"{library}:?"
        offset = pc - mapping.start + mapping.offset
        vaddr = next((offset - off + va for off, va, size in _elf_segments(host)
                      if off <= offset < off + size), offset)
        starts, names = _symbols(str(host))
        j = bisect.bisect_right(starts, vaddr) - 1
        return f"{library}:{names[j]}" if j >= 0 else f"{library}:?"


def parse_profile(text: str, symbolizer: Symbolizer, top: int = 12):
    """Aggregate the plugin's per-block lines by function and by class."""
    by_function: dict[str, int] = {}
    by_class = dict.fromkeys(CLASSES, 0)
    per_function_classes: dict[str, np.ndarray] = {}
    int_macs = fp_macs = 0
    for line in text.splitlines():
        fields = line.split()
        pc, n_insns, execs = int(fields[0], 16), int(fields[1]), int(fields[2])
        classes = np.array([int(v) for v in fields[3:3 + len(CLASSES)]], dtype=np.int64)
        name = symbolizer.name(pc)
        by_function[name] = by_function.get(name, 0) + n_insns * execs
        per_function_classes[name] = per_function_classes.get(name, 0) + classes * execs
        for c, count in zip(CLASSES, classes, strict=True):
            by_class[c] += int(count) * execs
        int_macs += int(fields[3 + len(CLASSES)]) * execs
        fp_macs += int(fields[4 + len(CLASSES)]) * execs
    ordered = dict(sorted(by_function.items(), key=lambda kv: -kv[1]))
    function_classes = {name: {c: int(v) for c, v in zip(CLASSES, per_function_classes[name],
                                                         strict=True) if v}
                        for name in list(ordered)[:top]}
    return ordered, by_class, int_macs, fp_macs, function_classes


def profile_emulated(model: str | Path, pi: int, sample: np.ndarray, kernels: str = "xnnpack",
                     *, python: str | None = None, cache_dir: str | Path | None = None,
                     warmup: int = 1, timeout: float = 3600.0) -> Profile:
    """Profile one invoke of ``model`` on ``sample`` (raw, prepared as the bench prepares it)
    on emulated Pi ``pi``.

    Returns a :class:`Profile`.

    Raises:
        RuntimeNotAvailable: the rig or the plugin is missing, or the emulated run fails.
    """
    from edgepose.arm.emulated import _emulate
    from edgepose.arm.plugin import build_plugin

    cpu = pi_cpu(pi)
    rig = require_rig(cpu.pi, python, cache_dir)
    sync_device_code(rig)
    write_views(rig)
    plugin = build_plugin(rig.cache_dir)
    model = Path(model).resolve()
    jobs = rig.cache_dir / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="profile-", dir=jobs) as tmp:
        folder = Path(tmp)
        np.save(folder / "count_inputs.npy", np.ascontiguousarray(sample[None]))
        job = {"models": [{"path": str(model), "inputs": "inputs.npy",
                           "count_input": str(folder / "count_inputs.npy")}],
               "kernels": [kernels],
               "count": {"warmup": warmup, "repeats": 1, "profile": True}}
        (folder / "job.json").write_text(json.dumps(job))
        counts, blocks = folder / "counts.txt", folder / "profile.txt"
        args = ["-m", "edgepose.arm.guest", str(folder), "0", kernels]
        _emulate(*emulator_command(rig, cpu.pi, args, plugin, counts, blocks), timeout)
        if not blocks.is_file():
            raise RuntimeNotAvailable("the plugin wrote no profile (is it built from the "
                                      "current insn_count.c?)", blocks)
        total = int(counts.read_text().split()[0])
        symbolizer = Symbolizer(read_maps((folder / f"maps_0_{kernels}.txt").read_text()),
                                rig.root)
        by_function, by_class, int_macs, fp_macs, function_classes = parse_profile(
            blocks.read_text(), symbolizer)
    return Profile(model=str(model), pi=cpu.pi, core=cpu.core, kernels=kernels,
                   instructions=total, by_function=by_function, by_class=by_class,
                   int_macs=int_macs, fp_macs=fp_macs, function_classes=function_classes)
