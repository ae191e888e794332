"""Run numbers (`seq`, `#42`): given by the store write that inserts a run (every path),
never twice, never reused; old stores numbered by `created`; `#N` / `N` accepted by every
command that takes a run, through the real `ctui` entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from cli_helpers import ctui, one_line_error
from jobs_helpers import PY, wait_final, write_config

from ctui.errors import ExitCode
from ctui.store import Store
from tests.store_helpers import stored_runs

pytestmark = pytest.mark.timeout(180)

CONFIG = f"""
[jobs.hello]
command = "{PY} -c 'import sys; print(\\"hello\\", sys.argv[1])' {{n}}"
params = {{ n = 0 }}
"""


def _doc(i: int, created: float, **extra: object) -> dict:
    return {
        "id": f"0aaaaaaa{i:04d}",
        "job": "train",
        "status": "succeeded",
        "created": created,
        "metrics": {"acc": i / 10},
        **extra,
    }


def _numbers(root: Path) -> dict[str, int]:
    out = ctui(root, "runs", "--json", "--limit", "-1")
    assert out.returncode == 0, out.stderr
    return {r["id"]: r["seq"] for r in json.loads(out.stdout)}


def test_every_insert_path_numbers_runs_once_and_never_reuses(project, tmp_path) -> None:
    write_config(project.root, CONFIG)
    store = Store(project.store_file)
    store.insert_run(_doc(1, 100.0, seq=77))  # a caller's seq is not kept
    store.put_runs([_doc(3, 300.0), _doc(2, 200.0)])  # one write: numbered by `created`
    launched = json.loads(ctui(project.root, "run", "hello", "--json").stdout)  # launch path
    assert launched["seq"] == 4
    wait_final(project, launched["id"])
    assert _numbers(project.root) == {
        "0aaaaaaa0001": 1,
        "0aaaaaaa0002": 2,
        "0aaaaaaa0003": 3,
        launched["id"]: 4,
    }
    assert ctui(project.root, "rm", "#4", "--yes").returncode == 0  # the newest goes …
    again = json.loads(ctui(project.root, "run", "hello", "--json").stdout)
    assert again["seq"] == 5  # … and its number is not given again
    wait_final(project, again["id"])
    # a sweep: many runs in the launcher's one transaction
    out = ctui(project.root, "run", "hello", "--sweep", "n=1,2,3", "--json")
    assert out.returncode == 0, out.stderr
    assert sorted(r["seq"] for r in json.loads(out.stdout)) == [6, 7, 8]
    for r in json.loads(out.stdout):
        wait_final(project, r["id"])
    assert sorted(_numbers(project.root).values()) == [1, 2, 3, 5, 6, 7, 8]
    # in the files themselves: each write that inserted a run wrote its number
    on_disk = stored_runs(Store(project.store_file))
    assert sorted(d["seq"] for d in on_disk.values()) == [1, 2, 3, 5, 6, 7, 8]
    assert orjson.loads(project.store_file.read_bytes())["meta"]["store"]["last_seq"] == 8


def test_number_refs_work_in_every_command(project) -> None:
    write_config(project.root, CONFIG)
    Store(project.store_file).put_runs([_doc(1, 100.0), _doc(2, 200.0)])
    run = json.loads(ctui(project.root, "run", "hello", "-p", "n=42", "--json").stdout)
    wait_final(project, run["id"])
    assert run["seq"] == 3
    root = project.root

    out = ctui(root, "show", "2", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["id"] == "0aaaaaaa0002"
    assert json.loads(ctui(root, "show", "#1", "--json").stdout)["id"] == "0aaaaaaa0001"
    assert "#3" in ctui(root, "show", "3").stdout.splitlines()[0]
    out = ctui(root, "tag", "#1", "best")
    assert out.returncode == 0 and out.stdout.startswith("0aaaaaaa0001: tags = best")
    assert ctui(root, "note", "2", "second").returncode == 0
    assert Store(project.store_file).get_run("0aaaaaaa0002")["note"] == "second"
    out = ctui(root, "logs", "#3")
    assert out.returncode == 0 and "hello 42" in out.stdout, out.stdout + out.stderr
    out = ctui(root, "stop", "3")
    assert out.returncode == 0 and run["id"] in out.stdout and "already ended" in out.stdout
    out = ctui(root, "promote", "#3")
    assert out.returncode == 0 and run["id"] in out.stdout, out.stderr
    out = ctui(root, "rm", "#2", "--yes")
    assert out.returncode == 0
    assert set(_numbers(root).values()) == {1, 3}

    one_line_error(ctui(root, "show", "#2"), ExitCode.BAD_INPUT, "no run #2", "#3")
    one_line_error(ctui(root, "show", "#x1"), ExitCode.BAD_INPUT, "not a run number")
    # a bare number no run has is an id prefix (ids start with 0: `0aaa` stays a prefix)
    one_line_error(ctui(root, "show", "2"), ExitCode.BAD_INPUT, "no run #2 and no run id")
    assert json.loads(ctui(root, "show", "0aaaaaaa0001", "--json").stdout)["seq"] == 1


def test_a_bare_number_is_an_id_prefix_when_no_run_has_that_number(project) -> None:
    Store(project.store_file).put_runs(
        [{"id": "123456", "created": 1.0}, {"id": "9x", "created": 2.0}]
    )
    assert json.loads(ctui(project.root, "show", "1", "--json").stdout)["id"] == "123456"
    assert json.loads(ctui(project.root, "show", "12", "--json").stdout)["id"] == "123456"
    assert json.loads(ctui(project.root, "show", "2", "--json").stdout)["id"] == "9x"


def test_concurrent_launches_and_an_import_never_share_a_number(project, tmp_path) -> None:
    write_config(project.root, CONFIG)
    dump = tmp_path / "other.jsonl"
    dump.write_text(
        "".join(
            orjson.dumps({"type": "run", "run": _doc(i, 50.0 + i, seq=i)}).decode() + "\n"
            for i in range(1, 21)
        )
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("CTUI_")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ctui", "run", "hello", "-p", f"n={i}", "--json"],
            cwd=project.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    procs.append(
        subprocess.Popen(
            [sys.executable, "-m", "ctui", "import", str(dump)],
            cwd=project.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    launched = [json.loads(out)["id"] for out, _ in results[:-1]]
    for run_id in launched:
        wait_final(project, run_id, timeout=60)
    numbers = _numbers(project.root)
    assert len(numbers) == 28
    assert sorted(numbers.values()) == list(range(1, 29))  # unique, no gaps, none reused
    # the import's numbers are this project's, in its own order, not the file's 1..20
    imported = [numbers[f"0aaaaaaa{i:04d}"] for i in range(1, 21)]
    assert imported == sorted(imported) and imported[-1] - imported[0] == 19
    out = ctui(project.root, "logs", f"#{numbers[launched[3]]}")
    assert "hello 3" in out.stdout, out.stdout + out.stderr


def test_an_old_store_is_numbered_by_created_and_kept_on_the_next_write(project) -> None:
    # a store as ctui wrote it before runs had numbers: no `seq`, no `last_seq`, runs in
    # the file in id order, which is not the order they were created in
    old = {
        "meta": {"store": {"schema": 1, "created": 1.0}},
        "runs": {
            "0aaaaaaa0001": _doc(1, 300.0),
            "0aaaaaaa0002": _doc(2, 100.0),
            "0aaaaaaa0003": _doc(3, 200.0),
            "hand-made": {"id": "hand-made", "job": "x"},  # no `created` at all
        },
        "triggers": {},
    }
    project.store_file.write_bytes(orjson.dumps(old))
    before = project.store_file.read_bytes()
    expected = {"hand-made": 1, "0aaaaaaa0002": 2, "0aaaaaaa0003": 3, "0aaaaaaa0001": 4}
    assert _numbers(project.root) == expected
    assert project.store_file.read_bytes() == before  # reading writes nothing
    assert json.loads(ctui(project.root, "show", "#3", "--json").stdout)["id"] == "0aaaaaaa0003"
    assert ctui(project.root, "tag", "2", "oldest").returncode == 0  # the first write …
    data = orjson.loads(project.store_file.read_bytes())  # … moves the runs into segments
    on_disk = stored_runs(Store(project.store_file))
    assert {k: d["seq"] for k, d in on_disk.items()} == expected
    assert data["meta"]["store"]["last_seq"] == 4  # … and keeps the numbers
    assert on_disk["0aaaaaaa0002"]["tags"] == ["oldest"]
    Store(project.store_file).insert_run(_doc(9, 50.0))  # older `created`, newer number
    assert _numbers(project.root)["0aaaaaaa0009"] == 5


def test_a_number_two_runs_share_stays_with_the_older(project) -> None:
    shared = {
        "meta": {"store": {"schema": 1, "last_seq": 2}},
        "runs": {
            "0aaaaaaa0001": _doc(1, 100.0, seq=1),
            "0aaaaaaa0002": _doc(2, 300.0, seq=2),
            "0aaaaaaa0003": _doc(3, 200.0, seq=2),  # copied by hand, number and all
        },
    }
    project.store_file.write_bytes(orjson.dumps(shared))
    assert _numbers(project.root) == {"0aaaaaaa0001": 1, "0aaaaaaa0002": 3, "0aaaaaaa0003": 2}


def test_import_numbers_runs_anew_and_replace_keeps_the_local_number(project, tmp_path) -> None:
    Store(project.store_file).put_runs([_doc(i, 10.0 * i) for i in range(1, 4)])
    dump = tmp_path / "runs.jsonl"
    assert ctui(project.root, "export", "-o", str(dump)).returncode == 0
    assert '"seq":1' in dump.read_text().replace(" ", "")  # the export says what it was
    other = tmp_path / "other"
    other.mkdir()
    assert ctui(other, "init").returncode == 0
    Store(other / ".ctui" / "ctui.json").put_runs([_doc(7, 1.0), _doc(8, 2.0)])
    out = ctui(other, "import", str(dump))
    assert out.returncode == 0 and "imported 3 run(s)" in out.stdout, out.stderr
    assert _numbers(other) == {
        "0aaaaaaa0007": 1,
        "0aaaaaaa0008": 2,
        "0aaaaaaa0001": 3,
        "0aaaaaaa0002": 4,
        "0aaaaaaa0003": 5,
    }
    lines = [orjson.loads(x) for x in dump.read_text().splitlines()]
    lines[0]["run"]["note"] = "replaced"
    lines[0]["run"]["seq"] = "not even a number"  # the file's number is never read
    dump.write_text("".join(orjson.dumps(x).decode() + "\n" for x in lines))
    out = ctui(other, "import", str(dump), "--replace")
    assert out.returncode == 0, out.stderr
    doc = json.loads(ctui(other, "show", lines[0]["run"]["id"], "--json").stdout)
    assert doc["note"] == "replaced" and doc["seq"] == _numbers(other)[doc["id"]]
    assert sorted(_numbers(other).values()) == [1, 2, 3, 4, 5]


def test_the_runs_table_shows_the_number(project) -> None:
    Store(project.store_file).put_runs([_doc(1, 100.0), _doc(2, 200.0)])
    out = ctui(project.root, "runs")
    lines = out.stdout.splitlines()
    assert lines[0].split()[0] == "#"
    assert lines[1].split()[:2] == ["#2", "0aaaaaaa0002"]
