"""ARM CPUs without a Pi: run the device side on an emulated Cortex-A72 / Cortex-A76.

Host-side orchestration only (plain Python + subprocess, never TensorFlow):

- :mod:`edgepose.arm.cpus` — what a Pi 4 / Pi 5 CPU is (QEMU model, /proc/cpuinfo,
  clock and the IPC assumed for latency estimates);
- :mod:`edgepose.arm.rig` — build and find the cached aarch64 Debian root with
  Python, ai-edge-litert and edgepose's device side (``edgepose arm setup``);
- :mod:`edgepose.arm.plugin` — build the QEMU instruction-counting plugin;
- :mod:`edgepose.arm.guest` — the script that runs *inside* the emulator;
- :mod:`edgepose.arm.emulated` — :func:`run_emulated`: run models on ARM and on
  x86, compare outputs, count instructions per invoke (``edgepose arm bench``).
"""
