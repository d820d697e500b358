"""Naming the instructions of a profiled invoke: pc -> library:function, classes summed.

The kind of fault: an instruction profile that silently attributes work to the wrong
function (a wrong load-address or segment calculation, ARM mapping symbols taken for
functions) or loses blocks. Real parts: a shared library compiled here with gcc and
its real symbol table, laid out in a /proc/PID/maps text the way the loader maps it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edgepose.arm.profile import (
    CLASSES,
    Symbolizer,
    _elf_segments,
    _symbols,
    parse_profile,
    read_maps,
)

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("nm") is None,
                                reason="needs gcc and nm (binutils) to build a real library")

SOURCE = """
int alpha(int x) { return x * 3 + 1; }
int beta(int x) { int s = 0; for (int i = 0; i < x; i++) s += alpha(i); return s; }
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("lib")
    (folder / "demo.c").write_text(SOURCE)
    out = folder / "libdemo.so"
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(out), str(folder / "demo.c")],
                   check=True)
    return out


def _symbol(library: Path, name: str) -> int:
    starts, names = _symbols(str(library))
    return starts[names.index(name)]


def _maps(library: Path, base: int) -> str:
    """The library mapped at ``base`` as ld.so maps it: one line per PT_LOAD segment."""
    lines = []
    for offset, vaddr, size in _elf_segments(library):
        start = base + vaddr - (vaddr % 4096)
        page_offset = offset - (offset % 4096)
        end = start + ((size + (vaddr % 4096) + 4095) // 4096) * 4096
        lines.append(f"{start:x}-{end:x} r-xp {page_offset:08x} 00:00 0    {library}")
    lines.append("7f0000000000-7f0000001000 rw-p 00000000 00:00 0    [heap]")
    return "\n".join(lines)


def test_pcs_inside_functions_are_named_with_their_library(library):
    base = 0x7F12_3400_0000
    symbolizer = Symbolizer(read_maps(_maps(library, base)), Path("/nonexistent-root"))
    assert symbolizer.name(base + _symbol(library, "alpha")) == "libdemo.so:alpha"
    assert symbolizer.name(base + _symbol(library, "beta") + 4) == "libdemo.so:beta"
    assert symbolizer.name(0x10) == "?:?"  # below every mapping


def test_profile_lines_add_up_per_function_and_class(library):
    base = 0x7F12_3400_0000
    symbolizer = Symbolizer(read_maps(_maps(library, base)), Path("/nonexistent-root"))
    alpha, beta = (base + _symbol(library, n) for n in ("alpha", "beta"))
    zeros = [0] * len(CLASSES)
    a_classes, b_classes = list(zeros), list(zeros)
    a_classes[CLASSES.index("scalar (loop/address)")] = 3
    b_classes[CLASSES.index("int8 dot product (sdot/udot)")] = 2
    b_classes[CLASSES.index("SIMD load")] = 1
    text = "\n".join([
        f"{alpha:x} 3 10 {' '.join(map(str, a_classes))} 0 0",
        f"{beta:x} 3 4 {' '.join(map(str, b_classes))} 32 0",
        f"{alpha + 4:x} 2 1 {' '.join(map(str, [0] * (len(CLASSES) - 1) + [2]))} 0 0",
    ])
    by_function, by_class, int_macs, fp_macs, classes = parse_profile(text, symbolizer)
    assert by_function == {"libdemo.so:alpha": 3 * 10 + 2 * 1, "libdemo.so:beta": 12}
    assert by_class["scalar (loop/address)"] == 30 + 2
    assert by_class["int8 dot product (sdot/udot)"] == 8
    assert by_class["SIMD load"] == 4
    assert (int_macs, fp_macs) == (32 * 4, 0)
    assert classes["libdemo.so:beta"] == {"int8 dot product (sdot/udot)": 8, "SIMD load": 4}


def test_mapping_symbols_are_not_functions(tmp_path):
    """AArch64 objects carry $x/$d mapping symbols; they must not take a function's pcs."""
    source = tmp_path / "m.s"
    source.write_text(".text\n.globl gamma\n.type gamma,@function\ngamma:\n$x.1:\n nop\n nop\n"
                      " ret\n")
    obj = tmp_path / "m.o"
    subprocess.run(["gcc", "-c", "-o", str(obj), str(source)], check=True)
    starts, names = _symbols(str(obj))
    assert names == ["gamma"]
