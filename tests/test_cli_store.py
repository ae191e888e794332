"""Headless store commands through the real `ctui` entry point: output, JSON, exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_helpers import ctui

from ctui.errors import ExitCode
from ctui.store import Store

GOLDEN = Path(__file__).parent / "golden"


def _runs() -> list[dict]:
    base = 1_790_000_000.0
    return [
        {
            "id": "0aaaaaaa0001",
            "job": "train",
            "status": "succeeded",
            "created": base,
            "started": base,
            "ended": base + 62,
            "duration": 62.0,
            "exit_code": 0,
            "params": {"lr": 0.01, "epochs": 3},
            "metrics": {"acc": 0.91, "loss": 0.3},
            "tags": ["baseline"],
            "note": "",
            "trigger": "manual",
            "git": "1234567",
            "data_hash": "ab12cd34",
        },
        {
            "id": "0aaaaaaa0002",
            "job": "train",
            "status": "failed",
            "created": base + 100,
            "started": base + 100,
            "ended": base + 110,
            "duration": 10.0,
            "exit_code": 3,
            "params": {"lr": 0.1, "epochs": 3},
            "metrics": {"acc": 0.42},
            "tags": [],
            "note": "",
            "trigger": "new-data",
            "git": "1234567",
            "data_hash": "ef56ab78",
        },
        {
            "id": "0aaaaaaa0103",
            "job": "evaluate",
            "status": "succeeded",
            "created": base + 200,
            "started": base + 200,
            "ended": base + 205,
            "duration": 5.0,
            "exit_code": 0,
            "params": {},
            "metrics": {"acc": 0.95},
            "tags": [],
            "note": "",
            "trigger": "after-train",
            "git": "89abcde",
            "data_hash": "ef56ab78",
        },
    ]


@pytest.fixture
def filled(project):
    Store(project.store_file).put_runs(_runs())
    return project


def test_runs_json_matches_golden(filled) -> None:
    out = ctui(filled.root, "runs", "--json")
    assert out.returncode == 0, out.stderr
    golden = GOLDEN / "runs.json"
    if os.environ.get("CTUI_UPDATE_GOLDEN"):
        golden.write_text(out.stdout)
    assert out.stdout == golden.read_text()


def test_runs_filter_sort_limit(filled) -> None:
    out = ctui(filled.root, "runs", "--json", "--filter", "job=train metric.acc>0.5")
    assert [r["id"] for r in json.loads(out.stdout)] == ["0aaaaaaa0001"]
    out = ctui(filled.root, "runs", "--json", "--sort", "-metric.acc", "--limit", "2")
    assert [r["id"] for r in json.loads(out.stdout)] == ["0aaaaaaa0103", "0aaaaaaa0001"]
    out = ctui(filled.root, "runs", "--json", "-f", "tag=baseline")
    assert [r["id"] for r in json.loads(out.stdout)] == ["0aaaaaaa0001"]


def test_runs_table_is_readable_without_colour(filled) -> None:
    out = ctui(filled.root, "runs")
    assert out.returncode == 0
    assert "✗ failed" in out.stdout and "✓ succeeded" in out.stdout
    assert "acc" in out.stdout


def test_bad_filter_exits_2(filled) -> None:
    out = ctui(filled.root, "runs", "--filter", "colour=red")
    assert out.returncode == ExitCode.BAD_INPUT
    assert "unknown filter field" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_and_ambiguous_ids_exit_2(filled) -> None:
    out = ctui(filled.root, "show", "zzzz")
    assert out.returncode == ExitCode.BAD_INPUT
    assert "no run matches" in out.stderr
    out = ctui(filled.root, "show", "0aaaaaaa0")
    assert out.returncode == ExitCode.BAD_INPUT
    assert "ambiguous" in out.stderr and "0aaaaaaa0001" in out.stderr
    out = ctui(filled.root, "show", "0aaaaaaa01", "--json")
    assert out.returncode == 0
    assert json.loads(out.stdout)["job"] == "evaluate"


def test_tag_note_rm(filled) -> None:
    assert ctui(filled.root, "tag", "0aaaaaaa0002", "bad-data", "retry").returncode == 0
    assert ctui(filled.root, "tag", "0aaaaaaa0002", "retry", "--remove").returncode == 0
    assert ctui(filled.root, "note", "0aaaaaaa0002", "-", stdin="lr too high\n").returncode == 0
    doc = Store(filled.store_file).get_run("0aaaaaaa0002")
    assert doc["tags"] == ["bad-data"] and doc["note"] == "lr too high"
    out = ctui(filled.root, "rm", "0aaaaaaa0002")  # no tty, no --yes
    assert out.returncode == ExitCode.BAD_INPUT
    assert ctui(filled.root, "rm", "0aaaaaaa0002", "--yes").returncode == 0
    assert len(Store(filled.store_file).runs()) == 2


def test_export_import_round_trip(filled, tmp_path: Path) -> None:
    from ctui.objects import ObjectStore

    objects = ObjectStore(filled.objects_dir)
    section = objects.put_json({"status": "ok", "paths": {"data/x": {"md5": "1" * 32}}})
    Store(filled.store_file).update_run("0aaaaaaa0001", {"manifest": {"data": section}})
    dump = tmp_path / "runs.jsonl"
    assert ctui(filled.root, "export", "-o", str(dump)).returncode == 0
    other = tmp_path / "other"
    other.mkdir()
    assert ctui(other, "init").returncode == 0
    out = ctui(other, "import", str(dump))
    assert out.returncode == 0, out.stderr
    assert "imported 3 run(s)" in out.stdout
    assert ObjectStore(other / ".ctui" / "objects").get_json(section)["paths"]
    out = ctui(other, "import", str(dump))
    assert "imported 0 run(s), 3 already present" in out.stdout
    dump.write_text(dump.read_text() + "{not json\n")
    out = ctui(other, "import", str(dump))
    assert out.returncode == ExitCode.BAD_INPUT and "nothing was imported" in out.stderr


def test_corrupt_store_exit_2_then_doctor_restores(filled) -> None:
    Store(filled.store_file).update_run("0aaaaaaa0001", {"note": "last good"})
    filled.store_file.write_text('{"runs": {"0aaaaaaa0001": {')  # hand-broken
    out = ctui(filled.root, "runs")
    assert out.returncode == ExitCode.BAD_INPUT
    assert str(filled.store_file) in out.stderr and "doctor" in out.stderr
    out = ctui(filled.root, "doctor")
    assert out.returncode == ExitCode.FAILED
    out = ctui(filled.root, "doctor", "--restore")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "restored" in out.stdout
    assert len(json.loads(ctui(filled.root, "runs", "--json").stdout)) == 3
    kept = list(filled.state_dir.glob("ctui.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text().startswith('{"runs"')


def test_not_a_project_exit_2(tmp_path: Path) -> None:
    out = ctui(tmp_path, "runs")
    assert out.returncode == ExitCode.BAD_INPUT
    assert "ctui init" in out.stderr


def test_init_writes_config_and_gitignore(git_repo: Path) -> None:
    out = ctui(git_repo, "init")
    assert out.returncode == 0
    assert (git_repo / "ctui.toml").exists()
    assert ".ctui/" in (git_repo / ".gitignore").read_text()
    assert ctui(git_repo, "runs", "--json").stdout.strip() == "[]"


def test_broken_config_names_file_and_key(project) -> None:
    (project.root / "ctui.toml").write_text('[jobs.train]\ncommand = "x"\nbackend = "k8s"\n')
    from ctui.config import load_config
    from ctui.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_config(project.root)
    assert "ctui.toml" in str(info.value) and "jobs.train.backend" in str(info.value)
    (project.root / "ctui.toml").write_text("[jobs.train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(project.root)


def test_show_says_the_gate_verdict_and_the_run_number(filled) -> None:
    Store(filled.store_file).update_run("0aaaaaaa0002", {"gate": {"verdict": "rejected"}})
    out = ctui(filled.root, "show", "0aaaaaaa0002")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].startswith("run 0aaaaaaa0002 #2")
    assert any(line.split() == ["gate", "rejected"] for line in out.stdout.splitlines())


def test_outside_text_in_messages_is_not_markup(filled) -> None:
    out = ctui(filled.root, "tag", "#1", "[red]", "[jobs.NAME]")
    assert out.returncode == 0
    assert out.stdout.strip() == "0aaaaaaa0001: tags = baseline, [red], [jobs.NAME]"
    (filled.root / "ctui.toml").write_text("# no jobs yet\n")
    out = ctui(filled.root, "jobs")
    assert out.returncode == 0 and "add a [jobs.NAME] table" in out.stdout, out.stdout
