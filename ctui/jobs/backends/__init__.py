"""Job backends: `get_backend(name)` imports the backend module lazily (docker/slurm are heavy)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ctui.errors import CtuiError

if TYPE_CHECKING:
    from ctui.jobs.backends.base import Backend

#: backend name → module path; each module exposes `BACKEND`, an instance of a Backend subclass
_MODULES = {
    "local": "ctui.jobs.backends.local",
    "docker": "ctui.jobs.backends.docker",
    "slurm": "ctui.jobs.backends.slurm",
}

#: backends whose runs have no local supervisor (another engine queues and tracks them)
EXTERNAL = frozenset({"slurm"})

_cache: dict[str, Backend] = {}


def get_backend(name: str) -> Backend:
    """The backend called `name` (`local`, `docker`, `slurm`)."""
    if name in _cache:
        return _cache[name]
    module_name = _MODULES.get(name)
    if module_name is None:
        raise CtuiError(
            f"unknown backend {name!r}", hint=f"use one of {', '.join(sorted(_MODULES))}"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise CtuiError(f"the {name} backend is not available in this ctui build") from None
    backend: Backend = module.BACKEND
    _cache[name] = backend
    return backend
