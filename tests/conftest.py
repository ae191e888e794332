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


# -- CI: a Docker or Slurm test that skips fails the run ----------------------------------------
# Off CI these tests skip, saying why, when no engine answers. On CI (CI=true or CI=1) the
# engines are started first (.ci/run), so a skip means an engine did not come up: the test fails
# with the skip's reason instead of the run going green without having run it.
from collections.abc import Generator  # noqa: E402
from typing import Any  # noqa: E402

_ENGINE_MARKERS = ("docker", "slurm")
# what the engine helpers (needs_engine, the Slurm `cluster` fixture) say when they skip
_ENGINE_HINTS = (
    "tests/ci/docker.sh",
    "tests/ci/slurm.sh",
    "Docker engine",
    "docker Python package",
    "could not import 'docker'",
)
_engine_skips: list[str] = []


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def _skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if not (report.skipped and _on_ci()) or hasattr(report, "wasxfail"):
        return report
    reason = _skip_reason(report)
    marker = next((m for m in _ENGINE_MARKERS if item.get_closest_marker(m)), None)
    if marker is None and not any(hint in reason for hint in _ENGINE_HINTS):
        return report
    what = f"`{marker}` test" if marker else "test that needs an engine"
    report.outcome = "failed"
    report.longrepr = (
        f"CI={os.environ['CI']}: this {what} was skipped, which CI does not allow: {reason}\n"
        "(.ci/run starts the engines: tests/ci/docker.sh, tests/ci/slurm.sh up)"
    )
    _engine_skips.append(f"{item.nodeid}: {reason}")
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _engine_skips:
        terminalreporter.section("Docker/Slurm tests skipped on CI (failed)", red=True)
        for line in _engine_skips:
            terminalreporter.write_line(line)
