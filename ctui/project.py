"""Where a project's state lives: found by walking up from the working directory, like git."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ctui.errors import CtuiError
from ctui.ids import check_run_id

STATE_DIR = ".ctui"
STORE_FILE = "ctui.json"
CONFIG_FILES = ("ctui.toml", "pyproject.toml")


@dataclass(frozen=True)
class Project:
    """A project root (where ctui.toml, git and DVC live) and its `.ctui/` state folder."""

    root: Path
    state_dir: Path

    @property
    def store_file(self) -> Path:
        return self.state_dir / STORE_FILE

    @property
    def objects_dir(self) -> Path:
        return self.state_dir / "objects"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    def run_dir(self, run_id: str) -> Path:
        """`.ctui/runs/<id>/`. An id that is not one safe path component (`../x`, `a/b`, a
        newline) is refused with a CtuiError, so no run's files are ever outside `runs/`."""
        return self.runs_dir / check_run_id(run_id)

    def ensure(self) -> Project:
        """Make the state folders. A `.ctui` that is a dangling symlink, a file, or a folder
        that cannot be made is a one-line CtuiError naming it; nothing is replaced."""
        for d in (self.state_dir, self.objects_dir, self.runs_dir, self.cache_dir):
            if d.is_dir():
                continue
            if d.is_symlink():
                raise CtuiError(
                    f"{d} is a symlink to {os.readlink(d)}, which does not exist",
                    hint="create the folder it points to, or remove the symlink",
                )
            if d.exists():
                raise CtuiError(
                    f"{d} is not a folder", hint="move it away; ctui keeps its state there"
                )
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CtuiError(
                    f"cannot create {d}: {exc.strerror or exc}",
                    hint="check the folder's permissions and free space",
                ) from None
        return self


def _is_project_root(d: Path) -> bool:
    if (d / STATE_DIR).is_dir() or (d / "ctui.toml").is_file():
        return True
    pyproject = d / "pyproject.toml"
    if pyproject.is_file():
        try:
            return "[tool.ctui" in pyproject.read_text(errors="replace")
        except OSError:
            return False
    return False


def find_project(start: Path | None = None, store: str | os.PathLike[str] | None = None) -> Project:
    """Locate the project.

    `store` (or `CTUI_STORE`) names the TinyDB file directly; its folder is the state folder
    and the project root is that folder's parent. Otherwise walk up from `start` (default: cwd).
    """
    store = store or os.environ.get("CTUI_STORE") or None
    if store:
        f = Path(store).expanduser().resolve()
        if f.is_dir():
            f = f / STORE_FILE
        state = f.parent
        root = state.parent if state.name == STATE_DIR else state
        return _StoreProject(root=root, state_dir=state, _store_file=f)
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if _is_project_root(d):
            return Project(root=d, state_dir=d / STATE_DIR)
    raise CtuiError(
        f"not a ctui project: no .ctui/ or ctui.toml in {here} or any parent folder",
        hint="run `ctui init` here, or pass --store / set CTUI_STORE",
    )


@dataclass(frozen=True)
class _StoreProject(Project):
    """A project whose TinyDB file was named explicitly (--store / CTUI_STORE)."""

    _store_file: Path = Path()

    @property
    def store_file(self) -> Path:
        return self._store_file
