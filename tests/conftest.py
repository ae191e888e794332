"""Shared fixtures. Area-specific fixtures live in the test modules that use them."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Keep git deterministic and independent of the user's config.
os.environ.setdefault("GIT_AUTHOR_NAME", "ctui tests")
os.environ.setdefault("GIT_AUTHOR_EMAIL", "tests@ctui.invalid")
os.environ.setdefault("GIT_COMMITTER_NAME", "ctui tests")
os.environ.setdefault("GIT_COMMITTER_EMAIL", "tests@ctui.invalid")
os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
os.environ.pop("CTUI_STORE", None)
# Snapshots and golden files render times in local time: make that the same everywhere.
os.environ["TZ"] = "UTC"
time.tzset()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A real git repository with one commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "tests@ctui.invalid")
    git(repo, "config", "user.name", "ctui tests")
    git(repo, "config", "commit.gpgsign", "false")
    (repo / "README.md").write_text("test repo\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.fixture
def project(git_repo: Path, monkeypatch: pytest.MonkeyPatch):
    """A git repo that is also a ctui project (`.ctui/` created); cwd is the repo."""
    from ctui.project import Project
    from ctui.store import Store

    proj = Project(root=git_repo, state_dir=git_repo / ".ctui").ensure()
    (git_repo / ".gitignore").write_text(".ctui/\n")
    Store(proj.store_file).initialise()
    monkeypatch.chdir(git_repo)
    return proj


# Snapshots live in the top-level snapshots/ folder, not tests/__snapshots__/: snap_compare
# looks SVGImageExtension up in its module, so a subclass put there relocates them.
import pytest_textual_snapshot as _pts  # noqa: E402


class TopLevelSnapshots(_pts.SVGImageExtension):
    @classmethod
    def dirname(cls, *, test_location):  # type: ignore[no-untyped-def, override]
        return str(ROOT / "snapshots" / Path(test_location.filepath).stem)


_pts.SVGImageExtension = TopLevelSnapshots  # type: ignore[misc]
