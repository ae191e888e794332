"""typer's help renderer without the two imports ctui's help never uses.

`typer.rich_utils` (what prints every `--help`) imports `rich.markdown` (markdown-it,
~30 ms) and `rich.traceback` (pygments, ~15 ms) at its top: the first for help written
in Markdown (ctui's is rich markup), the second for pretty tracebacks (ctui turns them
off). `import_rich_utils()` imports it with stand-ins for those two names, each of which
imports the real class the moment it is used, so nothing changes if typer ever does use
them. The stand-ins never stay in `sys.modules`: a later `import rich.markdown` gets the
real module.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

#: module → the names typer.rich_utils imports from it
_DEFERRED = {"rich.markdown": ("Markdown",), "rich.traceback": ("Traceback",)}


class _Deferred(type):
    """A stand-in class: calling it or reading an attribute imports the real one."""

    _module: str
    _name: str

    def _real(cls) -> Any:
        return getattr(importlib.import_module(cls._module), cls._name)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._real()(*args, **kwargs)

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(cls._real(), attr)


def _stand_in(module: str) -> types.ModuleType:
    stub = types.ModuleType(module, "stand-in while typer.rich_utils is imported")
    for name in _DEFERRED[module]:
        setattr(stub, name, _Deferred(name, (), {"_module": module, "_name": name}))
    return stub


def import_rich_utils() -> None:
    """Import typer.rich_utils (once) without rich.markdown and rich.traceback."""
    if "typer.rich_utils" in sys.modules:
        return
    stubs = {m: _stand_in(m) for m in _DEFERRED if m not in sys.modules}
    sys.modules.update(stubs)
    try:
        importlib.import_module("typer.rich_utils")
    except ImportError:  # typer wants more of them than the stand-ins have: the plain way
        sys.modules.pop("typer.rich_utils", None)
        for module, stub in stubs.items():
            if sys.modules.get(module) is stub:
                del sys.modules[module]
        stubs = {}
        importlib.import_module("typer.rich_utils")
    finally:
        for module, stub in stubs.items():
            if sys.modules.get(module) is stub:
                del sys.modules[module]
