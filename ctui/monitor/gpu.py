"""GPU sampling through NVML (`nvidia-ml-py`), one field at a time.

Every field is read on its own: one that the GPU/driver does not support (or that errors)
becomes the string `NA` ("n/a") for that field only, so an odd GPU never blanks the pane.
No NVIDIA driver/GPU → `{"available": False, "reason": ...}`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

#: the value of a field NVML cannot give for this GPU
NA = "n/a"


def visible_from_env(env: dict[str, str] | None = None) -> list[int | str] | None:
    """GPUs named by `CUDA_VISIBLE_DEVICES` (indices or `GPU-…`/`MIG-…` UUIDs); None = all."""
    value = (env if env is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    out: list[int | str] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if item.lstrip("-").isdigit():
            if int(item) < 0:
                break  # CUDA stops at the first invalid index
            out.append(int(item))
        else:
            out.append(item)
    return out


def _field(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        value = fn(*args)
    except Exception:  # NVMLError_NotSupported, NoPermission, GpuIsLost, …: this field only
        return NA
    return NA if value is None else value


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _text_of(fn: Callable[..., Any], *args: Any) -> str:
    return _text(fn(*args))


def _util(nv: Any, h: Any) -> Any:
    return nv.nvmlDeviceGetUtilizationRates(h).gpu


def _watts(nv: Any, h: Any) -> float:
    return round(nv.nvmlDeviceGetPowerUsage(h) / 1000.0, 1)


class GpuSampler:
    """Samples the GPUs visible to a job (`visible`: NVML indices or UUIDs; None = all)."""

    def __init__(self, visible: Sequence[int | str] | None = None):
        self.visible = list(visible) if visible is not None else None
        self.available = False
        self.reason: str | None = None
        self._nvml: Any = None
        self._handles: list[tuple[int, Any]] = []
        self._init()

    def _init(self) -> None:
        try:
            import pynvml
        except ImportError:
            self.reason = "nvidia-ml-py (pynvml) is not installed"
            return
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            if isinstance(exc, pynvml.NVMLError_LibraryNotFound):
                self.reason = "no NVIDIA driver: the NVML library was not found"
            elif isinstance(exc, pynvml.NVMLError_DriverNotLoaded):
                self.reason = "the NVIDIA driver is not loaded"
            else:
                self.reason = f"NVML could not start: {exc}"
            return
        self._nvml = pynvml
        try:
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            self.reason = f"NVML could not count GPUs: {exc}"
            return
        handles: list[tuple[int, Any]] = []
        uuids: dict[str, int] = {}
        for i in range(count):
            try:
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
            except pynvml.NVMLError:
                continue
            handles.append((i, h))
            uuid = _field(_text_of, pynvml.nvmlDeviceGetUUID, h)
            if uuid != NA:
                uuids[uuid] = i
        if self.visible is not None:
            wanted: list[int] = []
            for v in self.visible:
                if isinstance(v, int):
                    wanted.append(v)
                else:
                    match = [i for u, i in uuids.items() if u.startswith(v)]
                    wanted.extend(match[:1])
            handles = [(i, h) for i, h in handles if i in wanted]
        self._handles = handles
        if not handles:
            self.reason = "no NVIDIA GPU visible" + (
                f" (CUDA_VISIBLE_DEVICES selects {self.visible})"
                if self.visible is not None
                else ""
            )
            return
        self.available = True

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml = None
            self.available = False

    def _proc_mem(self, h: Any, pids: set[int]) -> Any:
        nv = self._nvml
        total = 0
        seen = False
        for getter in (
            nv.nvmlDeviceGetComputeRunningProcesses,
            nv.nvmlDeviceGetGraphicsRunningProcesses,
        ):
            try:
                procs = getter(h)
            except Exception:
                continue
            seen = True
            for p in procs:
                if p.pid in pids and isinstance(p.usedGpuMemory, int):
                    total += p.usedGpuMemory
        return total if seen else NA

    def sample(self, pids: Iterable[int] | None = None) -> dict[str, Any]:
        """`{"available": True, "time", "gpus": [per-GPU dict]}` or the unavailable reason.

        Per GPU: index, name, util (%), mem_used, mem_total (bytes), temp (°C), power (W),
        and `proc_mem` (bytes used by `pids`, when given). Unsupported fields are `NA`.
        """
        if not self.available:
            return {"available": False, "reason": self.reason}
        nv = self._nvml
        wanted = set(pids) if pids is not None else None
        gpus = []
        for index, h in self._handles:
            mem = _field(nv.nvmlDeviceGetMemoryInfo, h)
            gpu: dict[str, Any] = {
                "index": index,
                "name": _field(_text_of, nv.nvmlDeviceGetName, h),
                "util": _field(_util, nv, h),
                "mem_used": NA if mem == NA else _field(getattr, mem, "used"),
                "mem_total": NA if mem == NA else _field(getattr, mem, "total"),
                "temp": _field(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
                "power": _field(_watts, nv, h),
            }
            if wanted is not None:
                gpu["proc_mem"] = self._proc_mem(h, wanted)
            gpus.append(gpu)
        return {"available": True, "time": time.time(), "gpus": gpus}
