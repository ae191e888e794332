"""The env section: the job's Python and its distributions, OS, container, CUDA, and the
environment variables that shape a result.

The interpreter is the job's, not ctui's (`ctui.manifest.interpreter` resolves and asks it).
`installed_distributions` reads `*.dist-info` folder names on a path list (5 ms for 300
packages, where importlib.metadata takes ~300 ms), the way the probe does in the job's Python.
"""

from __future__ import annotations

import fnmatch
import os
import platform
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ctui.manifest.probe import canonical_name, distributions  # noqa: F401 - canonical_name: re-exported
from ctui.manifest.redact import redact_env

if TYPE_CHECKING:
    from ctui.config import ManifestConfig

#: variables recorded by exact name. Not PATH: it differs between any two shells (`uv run`,
#: an activated venv, cron) and would make every env look changed; the interpreter and the
#: packages it sees are recorded instead. Not VIRTUAL_ENV or CONDA_PREFIX either: they only
#: say which interpreter runs, and the interpreter itself is recorded.
ALLOW_NAMES = frozenset(
    {
        "PYTHONPATH", "PYTHONHASHSEED", "PYTHONNOUSERSITE", "LD_LIBRARY_PATH", "LD_PRELOAD",
        "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "CUDA_HOME", "CUDA_PATH", "CUDA_VERSION",
        "CUDA_LAUNCH_BLOCKING", "CUDNN_VERSION", "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
        "LANG", "LANGUAGE", "TZ", "WANDB_MODE", "TOKENIZERS_PARALLELISM",
        "CUBLAS_WORKSPACE_CONFIG", "XLA_FLAGS", "JAX_PLATFORMS", "JAX_ENABLE_X64", "KERAS_BACKEND",
        # TensorFlow's own variables, by name: the TF_ prefix also belongs to Terraform
        "TF_CPP_MIN_LOG_LEVEL", "TF_CPP_MAX_VLOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS",
        "TF_FORCE_GPU_ALLOW_GROWTH", "TF_GPU_ALLOCATOR", "TF_DETERMINISTIC_OPS",
        "TF_CUDNN_DETERMINISTIC", "TF_XLA_FLAGS", "TF_NUM_INTEROP_THREADS",
        "TF_NUM_INTRAOP_THREADS", "TF_USE_LEGACY_KERAS", "TF_GPU_THREAD_MODE",
        # Slurm's resource requests (not its per-job ids and paths)
        "SLURM_CPUS_PER_TASK", "SLURM_NTASKS", "SLURM_NNODES", "SLURM_GPUS", "SLURM_GPUS_PER_NODE",
        "SLURM_GPUS_PER_TASK", "SLURM_MEM_PER_NODE", "SLURM_MEM_PER_CPU", "SLURM_JOB_PARTITION",
    }
)  # fmt: skip
#: variables recorded by prefix: each prefix belongs to one tool that shapes a result
ALLOW_PREFIXES = (
    "MKL_", "LC_", "HF_", "TORCH_", "PYTORCH_", "NCCL_", "NVIDIA_TF32", "CUDNN_", "OMPI_",
    "ACCELERATE_", "TORCHINDUCTOR_", "XLA_",
)  # fmt: skip
#: recorded by neither: they change per process, per terminal or per launcher, not per
#: environment (uv's run-time variables, MLflow's per-run ids, ctui's own)
VOLATILE = frozenset(
    {
        "CTUI_RUN_ID", "CTUI_RUN_DIR", "HF_TOKEN_PATH", "LC_TERMINAL", "LC_TERMINAL_VERSION",
        "TORCHELASTIC_RUN_ID",
    }
)  # fmt: skip
_OS_RELEASE = Path("/etc/os-release")


def capture_env(
    env: Mapping[str, str] | None = None,
    *,
    python: Callable[[], dict[str, Any]] | None = None,
    cache_dir: Path | None = None,
    options: ManifestConfig | None = None,
) -> dict[str, Any]:
    """The env section. `python()` describes the job's interpreter (`interpreter.describe`);
    without it, the `python3` on `env`'s PATH is asked (what a job running `python3` gets)."""
    from ctui.manifest.interpreter import NoPython

    env = os.environ if env is None else env
    try:
        info = _default_python(env, cache_dir) if python is None else python()
        interp: dict[str, Any] = {
            "version": info.get("version"),
            "implementation": info.get("implementation"),
            "executable": canonical_executable(info.get("executable"), info.get("prefix")),
            "prefix": info.get("prefix"),
            "base_prefix": info.get("base_prefix"),
            "how": info.get("how"),
        }
        packages = dict(info.get("packages") or {})
    except NoPython as exc:  # nothing Python to describe; the rest of the env still is
        interp, packages = {"absent": str(exc)}, {}
    return {
        "python": interp,
        "packages": packages,
        "os": _os_info(),
        "container": container_info(env),
        "cuda": cuda_info(env),
        "variables": allowed_variables(env, options),
    }


def canonical_executable(executable: str | None, prefix: str | None) -> str | None:
    """`<prefix>/bin/python` for any name of the same interpreter in its prefix (`python3`,
    `python3.11`, the one `uv run` or a shebang picked), so naming it differently is no change."""
    if not executable or not prefix:
        return executable
    canonical = os.path.join(prefix, "bin", "python")
    try:
        if canonical != executable and os.path.samefile(canonical, executable):
            return canonical
    except OSError:
        pass
    return executable


def _default_python(env: Mapping[str, str], cache_dir: Path | None) -> dict[str, Any]:
    from ctui.manifest import interpreter

    info = interpreter.describe(["python3"], env, Path.cwd(), cache_dir=cache_dir)
    info["how"] = "python3 on PATH (no job named)"
    return info


def allowed_variables(
    env: Mapping[str, str], options: ManifestConfig | None = None
) -> dict[str, str]:
    """The variables that shape a result, secrets redacted, sorted by name.

    The default rules (ALLOW_NAMES, ALLOW_PREFIXES, minus VOLATILE), plus `[manifest]
    env_vars` (names or fnmatch patterns), minus `[manifest] exclude`.
    """
    extra = list(options.env_vars) if options else []
    exclude = list(options.exclude) if options else []
    chosen = {}
    for k, v in env.items():
        picked = (k in ALLOW_NAMES or k.startswith(ALLOW_PREFIXES)) and k not in VOLATILE
        if not picked and extra:
            picked = any(fnmatch.fnmatchcase(k, p) for p in extra)
        if picked and exclude and any(fnmatch.fnmatchcase(k, p) for p in exclude):
            picked = False
        if picked:
            chosen[k] = v
    return dict(sorted(redact_env(chosen).items()))


# -- distributions -----------------------------------------------------------------------------


def installed_distributions(path: list[str] | None = None) -> dict[str, str]:
    """Every distribution on `path` (default: ctui's own `sys.path`) → version, read the way
    the probe reads a job's interpreter."""
    return dict(distributions(sys.path if path is None else path))


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
