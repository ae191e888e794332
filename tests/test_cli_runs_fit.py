"""`ctui runs` fits the terminal (a pipe's 80 columns, or COLUMNS), keeps the columns asked
for, and teaches on bad input: a filter value of the wrong kind, an unknown sort key, a
filter that matches nothing — through the real `ctui` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import one_line_error

from ctui.errors import ExitCode
from ctui.store import Store


def runs(cwd: Path, *args: str, columns: int | None = 80) -> subprocess.CompletedProcess[str]:
    """`ctui runs ARGS` in a pipe; `columns` as COLUMNS (None: unset, as in a plain pipe)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTUI_", "MLFLOW_"))}
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "ctui", "runs", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def ten(project):
    base = 1_790_000_000.0
    Store(project.store_file).put_runs(
        {
            "id": f"0aaaaaaa{i:04d}",
            "job": "train",
            "status": "succeeded" if i % 3 else "failed",
            "created": base + i,
            "started": base + i,
            "duration": 60.0 + i,
            "trigger": "new-data",
            "git": "1234567abc",
            "data_hash": "ab12cd34ef",
            "params": {"lr": 0.01 * i, "epochs": 3, "batch_size": 32},
            "metrics": {"acc": 0.5 + i / 100, "loss": 1.0 - i / 50, "val_loss": 1.1 - i / 60},
        }
        for i in range(1, 11)
    )
    return project


def _header(out: subprocess.CompletedProcess[str]) -> list[str]:
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[0].split()


def test_80_columns_show_the_metrics_asked_for(ten) -> None:
    for columns in (80, None):  # COLUMNS=80, and a pipe with no COLUMNS at all (80 too)
        out = runs(ten.root, "-c", "metric.acc,metric.val_loss,param.lr", columns=columns)
        head = _header(out)
        assert head[0] == "#" and "status" in head
        assert {"acc", "val_loss", "lr"} <= set(head), head
        assert all(len(line) <= 80 for line in out.stdout.splitlines()), out.stdout
        row = out.stdout.splitlines()[1]
        assert row.split()[0] == "#10" and "0.6" in row  # the newest run, its acc


def test_80_columns_show_default_metrics_and_drop_the_rest(ten) -> None:
    out = runs(ten.root)
    head = _header(out)
    assert head[:2] == ["#", "id"] and "status" in head and "acc" in head, head
    assert "data" not in head  # dropped by priority, not squeezed
    assert all(len(line) <= 80 for line in out.stdout.splitlines())


def test_wide_terminal_adds_columns(ten) -> None:
    narrow, wide = set(_header(runs(ten.root))), set(_header(runs(ten.root, columns=200)))
    assert narrow < wide
    assert {"git", "data", "trigger", "loss", "val_loss", "lr"} <= wide


def test_asked_columns_beat_the_width(ten) -> None:
    asked = "metric.acc,metric.loss,metric.val_loss,param.lr,param.epochs,param.batch_size"
    head = _header(runs(ten.root, "-c", asked, columns=60))
    assert {"acc", "loss", "val_loss", "lr", "epochs", "batch_size"} <= set(head), head


def test_filter_comparing_a_metric_with_a_word_exits_2(ten) -> None:
    out = runs(ten.root, "-f", "metric.acc>abc")
    first = one_line_error(out, ExitCode.BAD_INPUT, "metric.acc", "'abc'", "not a number")
    assert "no runs yet" not in out.stdout + out.stderr, first
    one_line_error(runs(ten.root, "-f", "duration<3m"), ExitCode.BAD_INPUT, "not a number")
    one_line_error(runs(ten.root, "-f", "colour=red"), ExitCode.BAD_INPUT, "unknown filter")
    out = runs(ten.root, "-f", "param.opt>adam")  # params may be words: compared as text
    assert out.returncode == 0, out.stderr


def test_a_filter_that_matches_nothing_says_so(ten) -> None:
    out = runs(ten.root, "-f", "metric.acc>0.99")
    assert out.returncode == 0
    assert out.stdout == ""
    assert out.stderr.strip() == "no runs match 'metric.acc>0.99' (10 runs in the store)"
    out = runs(ten.root, "-f", "metric.acx>0.5")  # a typo: said too
    assert "no runs match" in out.stderr and "no run has metric.acx" in out.stderr
    out = runs(ten.root, "-f", "metric.acc>0.99", "--json")
    assert out.returncode == 0 and out.stdout.strip() == "[]"


def test_empty_store_still_says_launch_one(project) -> None:
    out = runs(project.root)
    assert out.returncode == 0 and "no runs yet" in out.stdout


def test_unknown_sort_keys_exit_2_and_teach(ten) -> None:
    first = one_line_error(runs(ten.root, "-s", "bogus"), ExitCode.BAD_INPUT, "'bogus'")
    assert "unknown sort key" in first
    assert "metric.NAME" in runs(ten.root, "-s", "bogus").stderr  # the known keys listed
    out = runs(ten.root, "-s", "-metric.acx")
    one_line_error(out, ExitCode.BAD_INPUT, "no run has metric 'acx'")
    assert "acc, loss, val_loss" in out.stderr
    one_line_error(runs(ten.root, "-s", "param.nope", "--json"), ExitCode.BAD_INPUT, "param")
    out = runs(ten.root, "-s", "-metric.acc", "-n", "1", "--json")
    assert out.returncode == 0 and '"0aaaaaaa0010"' in out.stdout
    out = runs(ten.root, "-s", "seq", "-n", "1")
    assert out.returncode == 0 and out.stdout.splitlines()[1].split()[0] == "#1"


def test_a_run_number_filters(ten) -> None:
    out = runs(ten.root, "-f", "#7")
    assert out.returncode == 0, out.stderr
    assert [line.split()[0] for line in out.stdout.splitlines()[1:]] == ["#7"]
    out = runs(ten.root, "-f", "seq>8")
    assert [line.split()[0] for line in out.stdout.splitlines()[1:]] == ["#10", "#9"]
    one_line_error(runs(ten.root, "-f", "seq>x"), ExitCode.BAD_INPUT, "not a number")


def test_metric_names_are_not_markup(project) -> None:
    Store(project.store_file).put_runs(
        [{"id": "0aaaaaaa0001", "status": "succeeded", "metrics": {"[b]acc": 1.0}}]
    )
    assert "[b]acc" in _header(runs(project.root, "-c", "metric.[b]acc"))


def test_a_param_and_a_metric_of_one_name_get_headers_that_differ(project) -> None:
    Store(project.store_file).put_runs(
        {
            "id": f"0aaaaaaa{i:04d}",
            "job": "train",
            "status": "succeeded",
            "created": 1.0 + i,
            "params": {"acc": 0.5},
            "metrics": {"acc": 0.7, "loss": 0.3},
        }  # fmt: skip
        for i in range(1, 3)
    )
    header = _header(runs(project.root, columns=200))
    assert "metric.acc" in header and "param.acc" in header, header
    assert "acc" not in header and "loss" in header, header
