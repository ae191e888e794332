"""The env section: Python, installed distributions, OS, container, CUDA, chosen env variables.

Distributions are read from the `*.dist-info` folder names on `sys.path` (5 ms for 300
packages, where reading every METADATA file through importlib.metadata takes ~300 ms);
only folders whose name does not carry the version fall back to importlib.metadata.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from ctui.manifest.redact import redact_env

#: variables recorded by exact name. Not PATH: it differs between any two shells (`uv run`,
#: an activated venv, cron) and would make every env look changed; the interpreter and the
#: packages it sees are recorded instead.
ALLOW_NAMES = frozenset(
    {
        "PYTHONPATH", "PYTHONHASHSEED", "PYTHONNOUSERSITE", "LD_LIBRARY_PATH",
        "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "CUDA_HOME", "CUDA_PATH", "CUDA_VERSION",
        "CUDNN_VERSION", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES",
        "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "TF_CPP_MIN_LOG_LEVEL",
        "LANG", "LANGUAGE", "TZ", "VIRTUAL_ENV", "WANDB_MODE", "WANDB_PROJECT",
        "TOKENIZERS_PARALLELISM",
        "CUBLAS_WORKSPACE_CONFIG", "XLA_FLAGS", "JAX_PLATFORMS", "KERAS_BACKEND",
    }
)  # fmt: skip
#: variables recorded by prefix
ALLOW_PREFIXES = (
    "MKL_", "LC_", "CONDA_", "HF_", "TORCH_", "PYTORCH_", "MLFLOW_", "DVC_", "SLURM_", "NCCL_",
    "TF_", "UV_", "PIP_", "NVIDIA_", "CUDNN_", "OMPI_", "ACCELERATE_",
)  # fmt: skip
#: recorded by neither: they change per process or per terminal, not per environment
VOLATILE = frozenset({"SLURM_JOB_ID", "SLURM_JOBID", "SLURM_TASK_PID", "SLURM_STEP_ID",
                      "CTUI_RUN_ID", "CTUI_RUN_DIR", "SLURM_PROCID", "SLURM_LOCALID"})  # fmt: skip
_OS_RELEASE = Path("/etc/os-release")


def capture_env(
    env: Mapping[str, str] | None = None,
    *,
    python: Any = None,
    cache_dir: Any = None,
    options: Any = None,
) -> dict[str, Any]:
    env = os.environ if env is None else env
    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "prefix": sys.prefix,
        },
        "packages": installed_distributions(),
        "os": _os_info(),
        "container": container_info(env),
        "cuda": cuda_info(env),
        "variables": allowed_variables(env),
    }


def allowed_variables(env: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed variables of `env`, secrets redacted, sorted by name."""
    chosen = {
        k: v
        for k, v in env.items()
        if (k in ALLOW_NAMES or k.startswith(ALLOW_PREFIXES)) and k not in VOLATILE
    }
    return dict(sorted(redact_env(chosen).items()))


# -- distributions -----------------------------------------------------------------------------

_NORMALIZE = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """PEP 503 normalised name: `Zope.Interface` → `zope-interface`."""
    return _NORMALIZE.sub("-", name).lower()


def installed_distributions(path: list[str] | None = None) -> dict[str, str]:
    """Every installed distribution → version; the first one on the path wins, like imports."""
    found: dict[str, str] = {}
    for entry in path if path is not None else sys.path:
        try:
            names = [e.name for e in os.scandir(entry or ".")]
        except OSError:
            continue
        for folder in names:
            if folder.endswith(".dist-info"):
                name, sep, version = folder[: -len(".dist-info")].partition("-")
            elif folder.endswith(".egg-info"):
                name, sep, version = folder[: -len(".egg-info")].partition("-")
                version = version.split("-py")[0]  # egg names carry `-py3.11`
            else:
                continue
            key = canonical_name(name)
            if key in found:
                continue
            if not sep or not version:
                version = _metadata_version(Path(entry or ".", folder)) or "unknown"
            found[key] = version
    return dict(sorted(found.items()))


def _metadata_version(folder: Path) -> str | None:
    from importlib.metadata import PathDistribution

    try:
        return PathDistribution(folder).version
    except Exception:  # a broken install: the section records "unknown", not a crash
        return None


# -- OS and container --------------------------------------------------------------------------


def _os_info() -> dict[str, Any]:
    u = platform.uname()
    info: dict[str, Any] = {
        "system": u.system,
        "kernel": u.release,
        "machine": u.machine,
        "distro": None,
    }
    try:
        for line in _OS_RELEASE.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                info["distro"] = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return info


def container_info(env: Mapping[str, str]) -> dict[str, Any] | None:
    """Runtime and image when inside a container. The container id is left out on purpose:
    it differs for every run of the same image, and the run document records it."""
    runtime = None
    if Path("/.dockerenv").exists():
        runtime = "docker"
    elif Path("/run/.containerenv").exists():
        runtime = "podman"
    else:
        try:
            cgroup = Path("/proc/self/cgroup").read_text()
        except OSError:
            cgroup = ""
        for marker in ("docker", "containerd", "kubepods", "libpod", "lxc"):
            if marker in cgroup:
                runtime = marker
                break
    image = env.get("CTUI_IMAGE_ID") or env.get("CTUI_IMAGE")
    digest = env.get("CTUI_IMAGE_DIGEST")
    if runtime is None and not image and not digest:
        return None
    return {"runtime": runtime, "image_id": image, "image_digest": digest}


# -- CUDA / cuDNN (cheap checks only: no nvidia-smi, no importing torch) --------------------


def cuda_info(env: Mapping[str, str]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    if env.get("CUDA_VERSION"):
        out["cuda"] = env["CUDA_VERSION"]
    if env.get("CUDNN_VERSION"):
        out["cudnn"] = env["CUDNN_VERSION"]
    home = Path(env.get("CUDA_HOME") or env.get("CUDA_PATH") or "/usr/local/cuda")
    if "cuda" not in out:
        version = _cuda_toolkit_version(home)
        if version:
            out["cuda"] = version
    if "cudnn" not in out:
        version = _cudnn_header_version(home)
        if version:
            out["cudnn"] = version
    torch = sys.modules.get("torch")  # only if the process already paid for importing it
    if torch is not None:
        try:
            out["torch_cuda"] = torch.version.cuda
            out["torch_cudnn"] = torch.backends.cudnn.version()
        except Exception:
            pass
    return out or None


def _cuda_toolkit_version(home: Path) -> str | None:
    try:
        doc = orjson.loads((home / "version.json").read_bytes())
        return str(doc["cuda"]["version"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        pass
    try:  # CUDA < 11.1: "CUDA Version 10.2.89"
        return (home / "version.txt").read_text().strip().rsplit(" ", 1)[-1] or None
    except OSError:
        return None


def _cudnn_header_version(home: Path) -> str | None:
    for header in (Path("/usr/include/cudnn_version.h"), home / "include" / "cudnn_version.h"):
        try:
            text = header.read_text()
        except OSError:
            continue
        parts = [
            re.search(rf"#define CUDNN_{k}\s+(\d+)", text) for k in ("MAJOR", "MINOR", "PATCHLEVEL")
        ]
        if all(parts):
            return ".".join(m.group(1) for m in parts if m)
    return None
