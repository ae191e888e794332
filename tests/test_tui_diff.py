"""The diff screen: verdict, side by side rows, only-changed, next/previous change, compare."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.widgets import DataTable, Static

from ctui.manifest import finish_section, save
from ctui.objects import ObjectStore
from ctui.project import Project
from ctui.store import Store
from ctui.tui.screens.diff import DiffScreen
from ctui.tui.widgets.diff_rows import build_rows, everything, only_changed
from ctui.tui.widgets.diff_view import DiffView

pytestmark = pytest.mark.timeout(60)

FIXED_GIT_ENV = {
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_AUTHOR_NAME": "ctui tests",
    "GIT_AUTHOR_EMAIL": "tests@ctui.invalid",
    "GIT_COMMITTER_NAME": "ctui tests",
    "GIT_COMMITTER_EMAIL": "tests@ctui.invalid",
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent",
}


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=FIXED_GIT_ENV
    )
    return out.stdout.strip()


def make_repo(root: Path) -> tuple[str, str]:
    """A git repo with two commits at fixed dates (so the shas are the same every time)."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    (root / "train.py").write_text("lr = 0.1\nepochs = 3\nprint('training')\n")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    first = git(root, "rev-parse", "HEAD")
    (root / "train.py").write_text("lr = 0.1\nepochs = 5\nprint('training [fast]')\n")
    git(root, "commit", "-q", "-am", "more epochs")
    return first, git(root, "rev-parse", "HEAD")


def sections(train_hash: str, commit: str) -> dict[str, Any]:
    return {
        "data": finish_section(
            {
                "paths": {
                    "data/train.csv": {"hash": train_hash, "size": 1200},
                    "data/test.csv": {"hash": "c" * 32, "size": 300},
                },
                "params": {},
                "sources": ["data.dvc"],
                "problems": [],
            }
        ),
        "code": finish_section(
            {"commit": commit, "branch": "main", "dirty": False, "changed": [], "patch": None}
        ),
        "env": finish_section({"python": "3.11.9", "packages": {"numpy": "2.4.6"}}),
        "compute": finish_section({"host": "box-1", "cpu": "Test CPU", "cores": 8}),
    }


def run_doc(run_id: str, manifest: dict[str, str], **extra: Any) -> dict[str, Any]:
    doc = {
        "id": run_id,
        "job": "train",
        "status": "succeeded",
        "created": 1_790_000_000.0,
        "started": 1_790_000_000.0,
        "ended": 1_790_000_060.0,
        "duration": 60.0,
        "exit_code": 0,
        "params": {"lr": 0.1, "epochs": 3},
        "metrics": {"acc": 0.9, "loss": 0.3},
        "tags": [],
        "trigger": "manual",
        "backend": "local",
        "host": "box-1",
        "manifest": manifest,
    }
    doc.update(extra)
    return doc


@pytest.fixture
def diff_project(tmp_path: Path) -> Project:
    """Four runs: B differs from A in data only; C in params; D in code, data and metrics."""
    root = tmp_path / "proj"
    first, second = make_repo(root)
    proj = Project(root=root, state_dir=root / ".ctui").ensure()
    store = Store(proj.store_file)
    store.initialise()
    objects = ObjectStore(proj.objects_dir)
    m_a = save(objects, {"sections": sections("a" * 32, first)})
    m_b = save(objects, {"sections": sections("b" * 32, first)})
    m_d = save(objects, {"sections": sections("b" * 32, second)})
    store.insert_run(run_doc("0aaaaaaaaaaa", m_a))
    store.insert_run(run_doc("0bbbbbbbbbbb", m_b))
    store.insert_run(run_doc("0ccccccccccc", m_a, params={"lr": 0.01, "epochs": 3}))
    store.insert_run(
        run_doc(
            "0ddddddddddd",
            m_d,
            params={"lr": 0.1, "epochs": 5},
            metrics={"acc": 0.93, "loss": 0.3},
            reproduces="0aaaaaaaaaaa",
            verdict="diverged in: data, code, params, metrics",
        )
    )
    return proj


class DiffApp(App[None]):
    def __init__(self, project: Project, run_ids: list[str]) -> None:
        super().__init__()
        self.project = project
        self.run_ids = run_ids

    def on_mount(self) -> None:
        self.push_screen(DiffScreen(self.project, self.run_ids))


async def loaded(pilot, app: App[None]) -> DiffScreen:  # type: ignore[no-untyped-def]
    for _ in range(200):
        await pilot.pause(0.02)
        screen = app.screen
        if isinstance(screen, DiffScreen) and (screen.result or screen.error):
            await pilot.pause()
            return screen
    raise AssertionError("the diff never finished loading")


def static_text(screen: DiffScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_data_change_shows_verdict_and_changed_path(diff_project: Project) -> None:
    app = DiffApp(diff_project, ["0aaaaaaaaaaa", "0bbbbbbbbbbb"])
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot, app)
        assert screen.error is None
        assert "only data changed: data/train.csv" in static_text(screen, "#diff-verdict")
        view = screen.query_one(DiffView)
        changes = [view.rows[i] for i in view.change_indices]
        assert [(r.section, r.kind, r.key) for r in changes] == [("data", "chg", "data/train.csv")]
        assert changes[0].left.startswith("hash=aaaaaaaaaa") and "bbbbbbbbbb" in changes[0].right
        # by default the unchanged keys are counted, not listed; identical sections are a title
        assert view.only_changed and all(r.kind != "same" for r in view.rows)
        notes = {r.section: r.text for r in view.rows if r.kind == "info"}
        assert notes == {
            "data": "1 path unchanged",
            "params": "2 params unchanged",
            "metrics": "2 metrics unchanged",
        }
        assert [r.kind for r in view.rows if r.section == "env"] == ["title"]


async def test_o_lists_the_unchanged_keys_and_back(diff_project: Project) -> None:
    app = DiffApp(diff_project, ["0aaaaaaaaaaa", "0bbbbbbbbbbb"])
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot, app)
        view = screen.query_one(DiffView)
        before = list(view.rows)
        await pilot.press("o")
        assert not view.only_changed
        # every key now: params, metrics, and the rest of a changed section, no counts
        assert any(r.kind == "same" and r.key == "lr" for r in view.rows)
        same_data = [r.key for r in view.rows if r.section == "data" and r.kind == "same"]
        assert same_data == ["data/test.csv"]
        assert [r.kind for r in view.rows if r.section == "env"] == ["title", "info"]
        assert not any("unchanged" in r.text for r in view.rows)
        assert len(view.rows) > len(before)
        await pilot.press("o")
        assert view.rows == before


def package_env(packages: dict[str, str]) -> dict[str, Any]:
    return finish_section({"python": "3.11.9", "packages": packages})


async def test_env_shows_the_changed_package_and_counts_the_rest(diff_project: Project) -> None:
    objects = ObjectStore(diff_project.objects_dir)
    store = Store(diff_project.store_file)
    packages = {f"pkg{i:03d}": "1.0" for i in range(312)}
    base = store.get_run("0aaaaaaaaaaa")["manifest"]
    for run_id, numpy in (("0eeeeeeeeeee", "2.1.0"), ("0fffffffffff", "2.2.0")):
        env = save(objects, {"sections": {"env": package_env({**packages, "numpy": numpy})}})
        store.insert_run(run_doc(run_id, {**base, "env": env["env"]}))
    app = DiffApp(diff_project, ["0eeeeeeeeeee", "0fffffffffff"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot, app)
        assert "only env changed: packages.numpy" in static_text(screen, "#diff-verdict")
        view = screen.query_one(DiffView)
        env = [r for r in view.rows if r.section == "env"]
        assert [(r.kind, r.key, r.text) for r in env[1:]] == [
            ("chg", "packages.numpy", ""),
            ("info", "", "312 packages and 1 other key unchanged"),
        ]
        await pilot.press("o")
        assert len([r for r in view.rows if r.section == "env" and r.kind == "same"]) == 313


async def test_metric_noise_is_identical_and_numbers_read_short(diff_project: Project) -> None:
    store = Store(diff_project.store_file)
    base = store.get_run("0aaaaaaaaaaa")["manifest"]
    store.insert_run(run_doc("0eeeeeeeeeee", base, metrics={"acc": 0.3275, "loss": 0.3}))
    store.insert_run(
        run_doc("0fffffffffff", base, metrics={"acc": 0.3275 - 5.89e-14, "loss": 0.3012})
    )
    app = DiffApp(diff_project, ["0eeeeeeeeeee", "0fffffffffff"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot, app)
        assert static_text(screen, "#diff-verdict") == "≠ only metrics changed: loss"
        view = screen.query_one(DiffView)
        loss = next(r for r in view.rows if r.key == "loss")
        assert (loss.kind, loss.left, loss.right) == ("chg", "0.3", "0.3012  (Δ +0.0012)")
        await pilot.press("o")
        acc = next(r for r in view.rows if r.key == "acc")
        assert (acc.kind, acc.left, acc.right) == ("same", "0.3275", "0.3275")


async def test_next_and_previous_change_move_the_cursor(diff_project: Project) -> None:
    app = DiffApp(diff_project, ["0aaaaaaaaaaa", "0ddddddddddd"])
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot, app)
        view = screen.query_one(DiffView)
        stops = view.change_indices
        assert len(stops) >= 4
        assert view.cursor == -1
        await pilot.press("right_square_bracket")
        assert view.cursor == stops[0]
        await pilot.press("n")
        assert view.cursor == stops[1]
        await pilot.press("N")
        assert view.cursor == stops[0]
        for _ in range(len(stops) + 2):  # past the last change the cursor stays put
            await pilot.press("]")
        assert view.cursor == stops[-1]
        await pilot.press("left_square_bracket")
        assert view.cursor == stops[-2]


async def test_code_section_shows_the_commit_patch_and_reproduce_verdict(
    diff_project: Project,
) -> None:
    app = DiffApp(diff_project, ["0aaaaaaaaaaa", "0ddddddddddd"])
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot, app)
        view = screen.query_one(DiffView)
        code = [r for r in view.rows if r.section == "code"]
        assert any(r.kind == "chg" and r.key == "commit" for r in code)
        patch = [r.text for r in code if r.kind == "patch"]
        assert "-epochs = 3" in patch and "+epochs = 5" in patch
        assert any("train.py" in r.text for r in code if r.kind == "info")  # the --stat
        assert "0ddddddddddd reproduces 0aaaaaaaaaaa: diverged in" in static_text(
            screen, "#diff-repro"
        )
        # the patch text came through as plain text, not markup: "[fast]" survives
        assert "+print('training [fast]')" in patch


async def test_compare_table_for_three_runs(diff_project: Project) -> None:
    app = DiffApp(diff_project, ["0aaaaaaaaaaa", "0bbbbbbbbbbb", "0ccccccccccc"])
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot, app)
        table = screen.query_one(DataTable)
        assert table.row_count == 2  # the data section hash and param lr differ
        keys = {str(table.get_row_at(i)[1]) for i in range(table.row_count)}
        assert keys == {"data", "lr"}
        lr_row = next(
            table.get_row_at(i)
            for i in range(table.row_count)
            if str(table.get_row_at(i)[1]) == "lr"
        )
        assert [str(c) for c in lr_row[2:]] == ["0.1", "0.1", "0.01"]
        assert "differ across 3 runs" in static_text(screen, "#diff-verdict")


async def test_unknown_run_is_an_error_line_not_a_crash(diff_project: Project) -> None:
    app = DiffApp(diff_project, ["0aaaaaaaaaaa", "zzzz"])
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot, app)
        assert screen.error and "zzzz" in screen.error
        assert "zzzz" in static_text(screen, "#diff-verdict")


def test_rows_layout_without_textual() -> None:
    result = {
        "sections": {
            "params": {
                "status": "changed",
                "added": {"seed": 1},
                "removed": {"dropout": 0.5},
                "changed": {"lr": {"old": 0.1, "new": 0.2, "delta": 0.1}},
            },
            "env": {"status": "identical", "added": {}, "removed": {}, "changed": {}},
        }
    }
    rows = build_rows(result, {"params": {"lr": 0.1, "bs": 32}}, {"params": {"lr": 0.2, "bs": 32}})
    kinds = [(r.section, r.kind, r.key) for r in rows if r.kind != "title"]
    assert kinds == [
        ("env", "info", ""),
        ("params", "same", "bs"),
        ("params", "del", "dropout"),
        ("params", "chg", "lr"),
        ("params", "add", "seed"),
        ("params", "info", ""),
    ]
    assert "Δ +0.1" in next(r.right for r in rows if r.key == "lr")
    compact = [(r.section, r.kind, r.key or r.text) for r in only_changed(rows)]
    assert compact == [
        ("env", "title", "identical"),
        ("params", "title", "changed"),
        ("params", "del", "dropout"),
        ("params", "chg", "lr"),
        ("params", "add", "seed"),
        ("params", "info", "1 param unchanged"),
    ]
    assert [r for r in everything(rows) if "unchanged" in r.text] == []


def test_snapshot_diff_two_runs(diff_project: Project, snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = DiffApp(diff_project, ["0aaaaaaaaaaa", "0ddddddddddd"])

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        await loaded(pilot, app)
        await pilot.press("]")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(110, 34), run_before=settle)


def test_snapshot_diff_two_runs_80x24(diff_project: Project, snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = DiffApp(diff_project, ["0aaaaaaaaaaa", "0ddddddddddd"])

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        await loaded(pilot, app)

    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_snapshot_compare_table(diff_project: Project, snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = DiffApp(diff_project, ["0aaaaaaaaaaa", "0bbbbbbbbbbb", "0ccccccccccc"])

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        await loaded(pilot, app)

    assert snap_compare(app, terminal_size=(100, 20), run_before=settle)


async def test_diff_reads_at_80x24_without_colour(diff_project: Project) -> None:
    app = DiffApp(diff_project, ["0aaaaaaaaaaa", "0bbbbbbbbbbb"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot, app)
        view = screen.query_one(DiffView)
        await pilot.press("n")
        lines = ["".join(seg.text for seg in view.render_line(y)) for y in range(len(view.rows))]
        change = next(line for line in lines if "data/train.csv" in line)
        assert change.startswith("~ ") and "│" in change  # a marker, two columns
        assert all(len(line) <= view.scrollable_content_region.width for line in lines)
