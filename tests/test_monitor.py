"""Resource sampling: a real process tree through psutil; NVML on whatever this machine has.

There is no NVIDIA GPU here, so the real NVML path is exercised for its "not available" answer;
the per-field n/a behaviour is checked against a stand-in `pynvml` module (a GPU cannot exist
here). `bench/gpu_check.py` runs the same sampler against a real GPU.
"""

from __future__ import annotations

import subprocess
import sys
import types

import pytest
from jobs_helpers import wait_for

from ctui.monitor.gpu import NA, GpuSampler, visible_from_env
from ctui.monitor.process import ProcessTreeSampler
from ctui.monitor.summary import Peaks

pytestmark = pytest.mark.timeout(30)

TREE = """
import subprocess, sys, time
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) for _ in range(3)]
print("ready", flush=True)
end = time.time() + 30
while time.time() < end:
    pass  # busy: the tree uses CPU
"""


@pytest.fixture
def tree():
    proc = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    import psutil

    for p in psutil.Process(proc.pid).children(recursive=True):
        p.kill()
    proc.kill()
    proc.wait()


def test_samples_the_whole_tree(tree):
    sampler = ProcessTreeSampler(tree.pid, rewalk=60)
    first = sampler.sample()
    assert first["nprocs"] == 4
    assert first["rss"] > 4 * 1_000_000
    assert first["threads"] >= 4
    assert set(first["pids"]) >= {tree.pid}
    second = wait_for(lambda: (s := sampler.sample())["cpu"] > 0 and s)
    assert second["nprocs"] == 4


def test_cached_tree_drops_exited_processes_and_rewalks(tree):
    import psutil

    sampler = ProcessTreeSampler(pids=lambda: [tree.pid], rewalk=0.0)
    assert sampler.sample()["nprocs"] == 4
    psutil.Process(tree.pid).children()[0].kill()
    wait_for(lambda: sampler.sample()["nprocs"] == 3)


def test_gone_root_gives_an_empty_sample():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    s = ProcessTreeSampler(proc.pid).sample()
    assert (s["nprocs"], s["rss"], s["cpu"]) == (0, 0, 0.0)


def test_no_gpu_here_says_so():
    s = GpuSampler().sample()
    if s["available"]:  # pragma: no cover - only on a machine with a GPU
        assert s["gpus"]
        return
    assert s["reason"]


def test_visible_from_env():
    assert visible_from_env({}) is None
    assert visible_from_env({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_from_env({"CUDA_VISIBLE_DEVICES": "1, 0"}) == [1, 0]
    assert visible_from_env({"CUDA_VISIBLE_DEVICES": "0,-1,2"}) == [0]
    assert visible_from_env({"CUDA_VISIBLE_DEVICES": "GPU-ab12"}) == ["GPU-ab12"]


class _NVMLError(Exception):
    pass


class _NotSupported(_NVMLError):
    pass


def fake_nvml(n: int = 2) -> types.ModuleType:
    """A stand-in pynvml: GPU 1 does not support temperature or power (like some boards)."""
    m = types.ModuleType("pynvml")
    m.NVMLError = _NVMLError
    m.NVMLError_NotSupported = _NotSupported
    m.NVMLError_LibraryNotFound = type("LNF", (_NVMLError,), {})
    m.NVMLError_DriverNotLoaded = type("DNL", (_NVMLError,), {})
    m.NVML_TEMPERATURE_GPU = 0
    m.nvmlInit = lambda: None
    m.nvmlShutdown = lambda: None
    m.nvmlDeviceGetCount = lambda: n
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetUUID = lambda h: f"GPU-{h}aaa"
    m.nvmlDeviceGetName = lambda h: b"Fake H100"
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=50 + h)
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=2**30, total=80 * 2**30)

    def temp(h, kind):
        if h == 1:
            raise _NotSupported()
        return 40

    def power(h):
        if h == 1:
            raise _NotSupported()
        return 123_456

    m.nvmlDeviceGetTemperature = temp
    m.nvmlDeviceGetPowerUsage = power
    m.nvmlDeviceGetComputeRunningProcesses = lambda h: [
        types.SimpleNamespace(pid=111, usedGpuMemory=5 * 2**20),
        types.SimpleNamespace(pid=222, usedGpuMemory=None),
    ]

    def graphics(h):
        raise _NotSupported()

    m.nvmlDeviceGetGraphicsRunningProcesses = graphics
    return m


def test_an_unsupported_field_is_na_for_that_field_only(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    s = GpuSampler().sample(pids=[111, 222])
    assert s["available"] is True
    g0, g1 = s["gpus"]
    assert g0 == {
        "index": 0,
        "name": "Fake H100",
        "util": 50,
        "mem_used": 2**30,
        "mem_total": 80 * 2**30,
        "temp": 40,
        "power": 123.5,
        "proc_mem": 5 * 2**20,
    }
    assert (g1["temp"], g1["power"]) == (NA, NA)
    assert (g1["util"], g1["mem_used"], g1["name"]) == (51, 2**30, "Fake H100")


def test_visible_gpus_by_index_or_uuid(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(3))
    assert [g["index"] for g in GpuSampler([2, 0]).sample()["gpus"]] == [0, 2]
    assert [g["index"] for g in GpuSampler(["GPU-1"]).sample()["gpus"]] == [1]
    none = GpuSampler([7]).sample()
    assert none["available"] is False and "no NVIDIA GPU visible" in none["reason"]


def test_peaks_and_means():
    p = Peaks()
    gpu = {"available": True, "gpus": [{"util": 20, "proc_mem": 100}, {"util": NA, "mem_used": 5}]}
    p.add({"cpu": 50.0, "rss": 10}, gpu)
    p.add({"cpu": 150.0, "rss": 30}, {"available": True, "gpus": [{"util": 60, "proc_mem": 300}]})
    p.add({"cpu": 100.0, "rss": 20}, {"available": False, "reason": "none"})
    r = p.result()
    assert r["max_rss"] == 30 and r["max_cpu"] == 150.0 and r["mean_cpu"] == 100.0
    assert r["mean_gpu_util"] == 40.0 and r["max_gpu_util"] == 60 and r["max_gpu_mem"] == 300


def _open_fds() -> int:
    import os

    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the /proc reader is Linux's")
def test_the_proc_reader_records_what_psutil_reports(tree):
    import psutil

    sampler = ProcessTreeSampler(tree.pid, rewalk=60)
    sampler.sample()
    procs = [psutil.Process(tree.pid), *psutil.Process(tree.pid).children(recursive=True)]
    s = sampler.sample()
    want_rss = sum(p.memory_info().rss for p in procs)
    assert s["threads"] == sum(p.num_threads() for p in procs)
    assert abs(s["rss"] - want_rss) <= 0.02 * want_rss  # the same counter, read a moment apart
    busy = wait_for(lambda: (x := sampler.sample())["cpu"] > 20 and x)  # the root spins
    assert busy["cpu"] < 100 * (psutil.cpu_count() or 1) + 50


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the /proc reader is Linux's")
def test_files_held_open_are_closed_when_processes_go_and_on_close(tree):
    import psutil

    before = _open_fds()
    sampler = ProcessTreeSampler(pids=lambda: [tree.pid], rewalk=0.0)
    assert sampler.sample()["nprocs"] == 4
    assert _open_fds() == before + 2 * 4  # stat and statm of each
    psutil.Process(tree.pid).children()[0].kill()
    wait_for(lambda: sampler.sample()["nprocs"] == 3)
    assert _open_fds() == before + 2 * 3
    sampler.close()
    assert _open_fds() == before
    assert sampler.sample()["nprocs"] == 4 - 1  # usable again: the files reopen
    sampler.close()
