"""The machine a bench ran on, as its tables name it."""

from __future__ import annotations

import platform
from pathlib import Path

from video_classifier.model.precision import NATIVE, cpu_flags

INT8_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")  # int8 dot-product instructions, as /proc/cpuinfo names them


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def matrix_flags() -> str:
    """This CPU's bf16, fp16 and int8 matrix-instruction flags, comma-separated ("none" where it has none)."""
    return ", ".join(sorted(f for units in [*NATIVE.values(), INT8_FLAGS] for f in units if f in cpu_flags())) or "none"
