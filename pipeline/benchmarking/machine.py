"""What a benchmark ran on: CPUs, load, Python and package versions. Never a file path."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from pipeline.execution.tuning import usable_cpu_count
from pipeline.manifest import package_versions

_CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: Path = _CPUINFO) -> str:
    """The CPU's name as the OS reports it ('model name' on Linux), else the platform's guess."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where the OS has none): on a shared machine,
    the first thing to look at when timings look wrong."""
    return [round(value, 2) for value in os.getloadavg()] if hasattr(os, "getloadavg") else []


def machine_details() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": usable_cpu_count(),
        "cpu_model": cpu_model(),
        "system": platform.system(),
        "machine": platform.machine(),
        "load_average_at_start": load_average(),
        "versions": package_versions(),
    }
