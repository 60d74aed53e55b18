"""What a benchmark's numbers were measured on: the host (CPU model and flags, cores, memory, load), without
importing torch, so memory benchmarks stay lean; each script adds the library versions that matter to it."""
from __future__ import annotations

import os
import platform
from pathlib import Path

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # the ones that decide matmul speed here


def host_info() -> dict:
    info: dict = {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
        info["cpu"] = names[0] if names else platform.processor()
        info["cpu_flags"] = [f for f in CPU_FLAGS if f" {f}" in cpuinfo]
    except OSError:
        info["cpu"] = platform.processor()
    try:
        mem = [ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")]
        info["mem_total_gb"] = round(int(mem[0].split()[1]) / 2**20, 1) if mem else None
    except OSError:
        pass
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info
