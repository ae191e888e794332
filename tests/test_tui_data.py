"""The TUI's data helpers: cached filter/sort agree with the CLI's, JSONL readers, the chart."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from test_tui_fixtures import run_docs

from ctui.errors import CtuiError
from ctui.query import filter_runs, sort_runs
from ctui.tui.data import RunsView
from ctui.tui.run_files import resource_series


def many_runs(n: int = 300) -> list[dict]:
    rng = random.Random(3)
    runs = []
    for i in range(n):
        run = dict(run_docs()[i % 10])
        run["id"] = f"{i:012d}"
        run["metrics"] = {"acc": rng.random()} if rng.random() > 0.2 else {}
        run["duration"] = rng.choice([None, rng.uniform(1, 100)])
        runs.append(run)
    return runs


@pytest.mark.parametrize(
    "key", ["started", "duration", "status", "job", "metric.acc", "param.lr", "trigger"]
)
@pytest.mark.parametrize("descending", [True, False])
def test_view_sorts_like_the_cli(key: str, descending: bool) -> None:
    runs = many_runs()
    view = RunsView()
    view.set_runs(runs)
    for text in ("", "job=train", "status=succeeded,failed"):
        expected = sort_runs(filter_runs(runs, text), key, descending)
        got = view.rows(text, key, descending)
        assert [r["id"] for r in got] == [r["id"] for r in expected]  # ties in the same order


def test_view_bad_filter_raises() -> None:
    view = RunsView()
    view.set_runs(many_runs(10))
    with pytest.raises(CtuiError):
        view.rows("metric.acc>", "started", True)


def test_resource_series(tmp_path: Path) -> None:
    path = tmp_path / "resources.jsonl"
    recs = [
        {"time": 1, "gpu": {"available": False, "reason": "no NVML"}},
        {
            "time": 2,
            "cpu": 50.0,
            "rss": 2**20,
            "gpus": [{"index": 0, "util": 10, "mem_used": "n/a"}],
        },
    ]
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in recs))
    assert resource_series(path) == {"cpu %": [50.0], "rss MiB": [1.0], "gpu0 util %": [10]}


def test_slurm_runs_get_a_column_with_job_id_and_queue_reason() -> None:
    from ctui.tui.data import build_columns, cell

    local = {"id": "a1", "job": "train", "status": "succeeded"}
    assert "slurm.job_id" not in [c.key for c in build_columns([local], [])]
    waiting = {
        "id": "b2",
        "job": "train",
        "status": "queued",
        "backend": "slurm",
        "slurm": {"job_id": "4242", "reason": "Resources"},
    }
    assert "slurm.job_id" in [c.key for c in build_columns([local, waiting], [])]
    assert cell(waiting, "slurm.job_id", 0.0)[0] == "4242 (Resources)"
    running = {**waiting, "status": "running"}
    assert cell(running, "slurm.job_id", 0.0)[0] == "4242"
    assert cell(local, "slurm.job_id", 0.0)[0] == ""
