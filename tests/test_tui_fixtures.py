"""A fixed, frozen project for the TUI tests: fixed ids, times, hosts, durations and files.

Other TUI test modules import `make_tui_project` and `FROZEN_NOW` from here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ctui.ids import _b32
from ctui.project import Project
from ctui.store import Store

#: the frozen "now" of every TUI test: 2026-11-27 12:00:00 UTC
FROZEN_NOW = 1_795_780_800.0


def fixed_id(t: float, n: int) -> str:
    return _b32(int((t - 1_704_067_200) * 100), 8) + _b32(n, 4)


ROWS: list[tuple[str, str, float, float, dict[str, Any], dict[str, float], str | None]] = [
    # job, status, minutes before now, duration s, params, metrics, trigger
    ("train", "succeeded", 600, 312.0, {"lr": 0.1, "epochs": 5}, {"acc": 0.81, "loss": 0.52}, None),
    ("train", "failed", 540, 41.5, {"lr": 0.3, "epochs": 5}, {"loss": 2.31}, None),
    ("eval", "succeeded", 500, 12.0, {"split": "test"}, {"acc": 0.8}, None),
    (
        "train",
        "succeeded",
        420,
        298.0,
        {"lr": 0.03, "epochs": 8},
        {"acc": 0.88, "loss": 0.31},
        "new-data",
    ),
    ("train", "cancelled", 360, 77.0, {"lr": 0.01, "epochs": 20}, {"loss": 0.9}, None),
    ("train", "lost", 300, 1801.0, {"lr": 0.01, "epochs": 20}, {}, "nightly"),
    (
        "train",
        "succeeded",
        240,
        455.0,
        {"lr": 0.01, "epochs": 12},
        {"acc": 0.91, "loss": 0.22},
        "new-code",
    ),
    ("eval", "timeout", 180, 600.0, {"split": "val"}, {}, "nightly"),
    (
        "train",
        "succeeded",
        120,
        402.0,
        {"lr": 0.003, "epochs": 12},
        {"acc": 0.93, "loss": 0.18},
        None,
    ),
    ("train", "running", 3, 0.0, {"lr": 0.001, "epochs": 30}, {}, None),
]


def run_docs() -> list[dict[str, Any]]:
    docs = []
    for n, (job, status, minutes, dur, params, metrics, trigger) in enumerate(ROWS):
        started = FROZEN_NOW - minutes * 60
        doc: dict[str, Any] = {
            "id": fixed_id(started - 1, n),
            "job": job,
            "status": status,
            "created": started - 1,
            "started": started,
            "ended": None if status == "running" else started + dur,
            "duration": None if status == "running" else dur,
            "exit_code": {"succeeded": 0, "failed": 1}.get(status),
            "params": params,
            "metrics": metrics,
            "tags": ["baseline"] if n == 0 else [],
            "note": "first try" if n == 0 else "",
            "trigger": trigger,
            "cause": "data/train.csv changed" if trigger == "new-data" else None,
            "backend": "local",
            "command": ["python", "train.py", f"--lr={params.get('lr', 0)}"],
            "manifest": {},
            "git": f"{0xA1B2C3D + n * 4099:07x}",
            "data_hash": f"{0xD00D0000 + n * 77:08x}",
            "host": "train-box",
            "error": "exit code 1: ValueError: loss is nan" if status == "failed" else None,
            "log_tail": ["epoch 1 loss=2.31", "[red]ValueError[/red]: loss is nan"]
            if status == "failed"
            else [],
        }
        docs.append(doc)
    return docs


def _write_run_files(project: Project, doc: dict[str, Any], n: int) -> None:
    folder = project.run_dir(doc["id"])
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"epoch {i} loss={1 / (i + 1):.3f} [bold]not markup[/bold]" for i in range(40)]
    (folder / "output.log").write_text("\n".join(lines) + "\n")
    with (folder / "metrics.jsonl").open("wb") as fh:
        for step in range(60):
            t = doc["started"] + step
            loss = 2.0 * math.exp(-step / 15) + 0.05 * math.sin(step + n)
            acc = 0.5 + 0.45 * (1 - math.exp(-step / 20))
            fh.write(orjson.dumps({"name": "loss", "value": loss, "step": step, "time": t}) + b"\n")
            fh.write(orjson.dumps({"name": "acc", "value": acc, "step": step, "time": t}) + b"\n")
    with (folder / "resources.jsonl").open("wb") as fh:
        for i in range(60):
            rec = {
                "time": doc["started"] + i,
                "cpu": 80 + 20 * math.sin(i / 5),
                "rss": (300 + 2 * i) * 2**20,
                "threads": 8,
                "nprocs": 2,
                "gpus": [
                    {
                        "index": 0,
                        "name": "Test GPU",
                        "util": 50 + 40 * math.sin(i / 7),
                        "mem_used": (4000 + 10 * i) * 2**20,
                        "mem_total": 16 * 2**30,
                    }
                ],
            }
            fh.write(orjson.dumps(rec) + b"\n")


def _save_manifest(project: Project, n: int) -> dict[str, str]:
    from ctui.manifest import absent_section, finish_section, save
    from ctui.objects import ObjectStore

    sections = {
        "data": finish_section(
            {"paths": {"data/train.csv": {"hash": f"md5:{n:032x}", "size": 1024 + n, "nfiles": 1}}}
        ),
        "code": finish_section(
            {
                "commit": f"{0xA1B2C3D + n * 4099:07x}" + "0" * 33,
                "branch": "main",
                "dirty": False,
                "message": "tune [red]lr[/red]",
            }
        ),
        "env": finish_section({"python": "3.11.7", "packages": {"numpy": "2.1.0"}}),
        "compute": absent_section("no GPU visible (NVML not found)"),
    }
    return save(ObjectStore(project.objects_dir), {"sections": sections, "blobs": {}})


def make_tui_project(root: Path, *, files: bool = True) -> Project:
    """A project at `root` holding the fixed runs (and their run folders when `files`)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "ctui.toml").write_text('[jobs.train]\ncommand = "python train.py"\n')
    project = Project(root=root, state_dir=root / ".ctui").ensure()
    docs = run_docs()
    if files:
        for n, doc in enumerate(docs):
            _write_run_files(project, doc, n)
            doc["manifest"] = _save_manifest(project, n)
    store = Store(project.store_file)
    store.initialise()
    store.put_runs(docs)
    return project


@pytest.fixture
def tui_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.setenv("CTUI_KEYMAP", str(tmp_path / "no-keymap.toml"))
    monkeypatch.setenv("TZ", "UTC")  # absolute times on the detail screen
    time.tzset()
    yield make_tui_project(tmp_path / "demo")
    monkeypatch.undo()
    time.tzset()


def test_fixed_runs_are_sorted_by_time() -> None:
    ids = [d["id"] for d in run_docs()]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def make_app(project: Project, clock: Callable[[], float] = lambda: FROZEN_NOW, **kw: Any) -> Any:
    """The app on `project` as the Pilot tests drive it: a frozen clock, no polling, the
    default keys."""
    from ctui.tui.app import CtuiApp

    kw.setdefault("poll_interval", 1000)
    kw.setdefault("keymap", {})
    return CtuiApp(project, clock=clock, **kw)


async def wait_for(pilot: Any, condition: Callable[[], Any], timeout: float = 15) -> None:
    """Pause until `condition()` holds (workers report back), failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.05)
