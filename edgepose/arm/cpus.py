"""The two Raspberry Pi CPUs edgepose emulates, as data.

Each entry says which QEMU CPU model to use, what ``/proc/cpuinfo`` the guest
must see (XNNPACK's cpuinfo library reads the MIDR part number from it to pick
micro-kernels; the host's x86 file makes the interpreter crash), and the clock and
IPC range used to turn an instruction count into a *rough* Pi latency estimate.

IPC (instructions per cycle) is an assumption, not a measurement: see docs/arm.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgepose.errors import ConfigError


@dataclass(frozen=True)
class PiCpu:
    """One Raspberry Pi's CPU as the emulator presents it."""

    pi: int
    core: str  # marketing name, e.g. "Cortex-A72"
    qemu_cpu: str  # `qemu-aarch64 -cpu NAME`
    midr_variant: str
    midr_part: str
    midr_revision: str
    features: str  # the "Features" line of a real board's /proc/cpuinfo
    board: str
    clock_ghz: tuple[float, float]  # (low, high) shipped clocks
    ipc: tuple[float, float]  # (low, high) assumed sustained IPC of TFLite kernels
    default_python: str

    def cpuinfo(self, cores: int = 4) -> str:
        """A /proc/cpuinfo as the real board prints it, for ``cores`` processors."""
        block = (
            "processor\t: {i}\n"
            "BogoMIPS\t: 108.00\n"
            f"Features\t: {self.features}\n"
            "CPU implementer\t: 0x41\n"
            "CPU architecture: 8\n"
            f"CPU variant\t: {self.midr_variant}\n"
            f"CPU part\t: {self.midr_part}\n"
            f"CPU revision\t: {self.midr_revision}\n"
        )
        body = "\n".join(block.format(i=i) for i in range(cores))
        return f"{body}\nModel\t\t: {self.board}\n"

    def estimate_ms(self, instructions: int) -> tuple[float, float]:
        """(fastest, slowest) latency in ms for ``instructions`` at the assumed IPC and clock.

        fastest = high IPC at the high clock; slowest = low IPC at the low clock.
        An estimate for orientation, never a measured Pi latency.
        """
        fastest = instructions / (self.ipc[1] * self.clock_ghz[1] * 1e9) * 1e3
        slowest = instructions / (self.ipc[0] * self.clock_ghz[0] * 1e9) * 1e3
        return fastest, slowest


PI_CPUS: dict[int, PiCpu] = {
    4: PiCpu(
        pi=4, core="Cortex-A72", qemu_cpu="cortex-a72",
        midr_variant="0x0", midr_part="0xd08", midr_revision="3",
        features="fp asimd evtstrm crc32 cpuid",
        board="Raspberry Pi 4 Model B Rev 1.4",
        clock_ghz=(1.5, 1.8), ipc=(0.8, 1.3), default_python="3.11",
    ),
    5: PiCpu(
        pi=5, core="Cortex-A76", qemu_cpu="cortex-a76",
        midr_variant="0x4", midr_part="0xd0b", midr_revision="1",
        features=("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
                  "asimdrdm lrcpc dcpop asimddp"),
        board="Raspberry Pi 5 Model B Rev 1.0",
        clock_ghz=(2.4, 2.4), ipc=(1.5, 2.5), default_python="3.13",
    ),
}


def pi_cpu(pi: int | str) -> PiCpu:
    """The CPU of Pi ``pi`` (4, 5, "4", "pi5"); a ConfigError names the valid ones.

    Raises:
        ConfigError: an unknown Pi (the message lists the valid ones).
    """
    key = str(pi).lower().removeprefix("pi")
    try:
        return PI_CPUS[int(key)]
    except (ValueError, KeyError):
        raise ConfigError(f"unknown Raspberry Pi {pi!r}: choose one of "
                          f"{', '.join(str(p) for p in PI_CPUS)}") from None
