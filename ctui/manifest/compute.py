"""The compute section: host, CPU, RAM, disk, and every GPU's static facts through NVML.

Only things that stay put are recorded (no free memory, no utilisation), so an unchanged box
hashes equal. No GPU or no NVML library is a value (`gpus: []` plus the reason), not an error.
The live GPU sampler is `ctui.monitor`; this module only reads what a GPU *is*.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
from pathlib import Path
from typing import Any

import psutil


def capture_compute(root: Path) -> dict[str, Any]:
    gpus, gpu_reason, driver = gpu_static_info()
    return {
        "host": socket.gethostname(),
        "cpu": {
            "model": cpu_model(),
            "arch": platform.machine(),
            "physical_cores": psutil.cpu_count(logical=False),
            "logical_cores": psutil.cpu_count(logical=True),
            "usable_cores": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else None,
        },
        "memory_total": psutil.virtual_memory().total,
        "disk_total": _disk_total(root),
        "gpu_driver": driver,
        "gpus": gpus,
        "gpu_reason": gpu_reason,
    }


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("model name", "Hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _disk_total(root: Path) -> int | None:
    try:
        return shutil.disk_usage(root).total
    except OSError:
        return None


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def gpu_static_info() -> tuple[list[dict[str, Any]], str | None, dict[str, Any] | None]:
    """(GPUs, why there are none, driver facts) from NVML.

    Each GPU: index, name, uuid, memory_total (bytes), and where supported: compute
    capability, PCI bus id. A field NVML refuses is left out, never fatal for the rest.
    """
    try:
        import pynvml
    except ImportError:
        return [], "nvidia-ml-py (pynvml) is not installed", None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return [], f"{type(exc).__name__}: {exc}", None
    try:
        driver: dict[str, Any] = {}
        try:
            driver["version"] = _text(pynvml.nvmlSystemGetDriverVersion())
        except pynvml.NVMLError:
            pass
        try:
            v = pynvml.nvmlSystemGetCudaDriverVersion_v2()
            driver["cuda"] = f"{v // 1000}.{(v % 1000) // 10}"
        except (pynvml.NVMLError, AttributeError):
            pass
        count = pynvml.nvmlDeviceGetCount()
        gpus = [_one_gpu(pynvml, i) for i in range(count)]
        return gpus, None if gpus else "NVML found no GPU", driver or None
    except pynvml.NVMLError as exc:
        return [], f"{type(exc).__name__}: {exc}", None
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def _one_gpu(pynvml: Any, index: int) -> dict[str, Any]:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    gpu: dict[str, Any] = {"index": index}
    fields = {
        "name": lambda: _text(pynvml.nvmlDeviceGetName(handle)),
        "uuid": lambda: _text(pynvml.nvmlDeviceGetUUID(handle)),
        "memory_total": lambda: int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
        "compute_capability": lambda: ".".join(
            map(str, pynvml.nvmlDeviceGetCudaComputeCapability(handle))
        ),
        "pci_bus_id": lambda: _text(pynvml.nvmlDeviceGetPciInfo(handle).busId),
        "power_limit_w": lambda: pynvml.nvmlDeviceGetPowerManagementDefaultLimit(handle) / 1000,
    }
    for key, read in fields.items():
        try:
            gpu[key] = read()
        except (pynvml.NVMLError, AttributeError, TypeError, ValueError):
            pass  # unsupported on this GPU: leave the field out
    return gpu
