"""The job commands through the real `ctui` entry point: output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from jobs_helpers import PY, run_doc, wait_final, wait_for, write_config

pytestmark = pytest.mark.timeout(90)

CONFIG = f"""
[jobs.ok]
command = "{PY} -c 'import sys; print(\\"lr is\\", sys.argv[1])' {{lr}}"
params = {{ lr = 0.01, epochs = 3 }}

[jobs.fail]
command = "{PY} -c 'print(\\"bad\\"); raise SystemExit(4)'"

[jobs.sleepy]
command = "{PY} -c 'import time; print(\\"up\\", flush=True); time.sleep(60)'"
max_concurrent = 1
"""


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def ctui(project, *args: str) -> Result:
    """Run a command in this process (fast); errors are mapped to exit codes as `main` does."""
    from typer.testing import CliRunner

    from ctui.cli import app
    from ctui.errors import CtuiError

    result = CliRunner().invoke(app, ["-C", str(project.root), *args])
    exc = result.exception
    if isinstance(exc, CtuiError):
        return Result(int(exc.code), result.stdout, str(exc))
    if exc is not None and not isinstance(exc, SystemExit):
        raise exc
    return Result(result.exit_code, result.stdout, result.stderr)


def ctui_bin(project, *args: str) -> subprocess.CompletedProcess[str]:
    """The real entry point in a subprocess (slower: used for the exit-code tests)."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ctui", *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def jp(project):
    write_config(project.root, CONFIG)
    return project


def test_run_follow_streams_the_log_and_exits_0(jp):
    r = ctui_bin(jp, "run", "ok", "-p", "lr=0.5", "--follow")
    assert r.returncode == 0, r.stderr
    assert "lr is 0.5" in r.stdout
    assert "succeeded" in r.stdout


def test_run_follow_of_a_failing_job_exits_1(jp):
    r = ctui_bin(jp, "run", "fail", "--follow")
    assert r.returncode == 1
    assert "bad" in r.stdout
    assert "exit code 4" in r.stdout


def test_run_detached_prints_the_id_and_a_hint(jp):
    r = ctui(jp, "run", "ok")
    assert r.returncode == 0, r.stderr
    run_id = r.stdout.split()[2]
    assert f"ctui logs -f {run_id}" in r.stdout
    assert wait_final(jp, run_id)["status"] == "succeeded"


def test_run_json(jp):
    r = ctui(jp, "run", "ok", "--json")
    doc = json.loads(r.stdout)
    assert doc["job"] == "ok" and doc["params"] == {"lr": 0.01, "epochs": 3}
    wait_final(jp, doc["id"])


def test_unknown_param_exits_2_listing_the_known_ones(jp):
    r = ctui_bin(jp, "run", "ok", "-p", "nope=1")
    assert r.returncode == 2
    assert "known: epochs, lr" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_value_and_unknown_job_exit_2(jp):
    assert ctui(jp, "run", "ok", "-p", "epochs=many").returncode == 2
    r = ctui(jp, "run", "nojob")
    assert r.returncode == 2
    assert "no such job" in r.stderr


def test_broken_config_exits_2_naming_file_and_key(jp):
    (jp.root / "ctui.toml").write_text('[jobs.x]\ncommand = "a"\nmax_concurrent = 0\n')
    r = ctui(jp, "run", "x")
    assert r.returncode == 2
    assert "ctui.toml" in r.stderr and "jobs.x.max_concurrent" in r.stderr


def test_ps_queue_logs_stop(jp):
    first = json.loads(ctui(jp, "run", "sleepy", "--json").stdout)
    second = json.loads(ctui(jp, "run", "sleepy", "--json").stdout)
    assert second["status"] == "queued"
    wait_for(lambda: "up" in (jp.run_dir(first["id"]) / "output.log").read_text())

    ps = json.loads(ctui(jp, "ps", "--json").stdout)
    assert [d["id"] for d in ps] == [first["id"]]
    assert first["id"] in ctui(jp, "ps").stdout
    queue = json.loads(ctui(jp, "queue", "--json").stdout)
    assert [d["id"] for d in queue] == [second["id"]]

    logs = ctui(jp, "logs", first["id"][:8], "-n", "1")
    assert logs.returncode == 0 and logs.stdout == "up\n"

    top = ctui(jp, "top", "--once")
    assert top.returncode == 0 and first["id"] in top.stdout and "GPU" in top.stdout

    r = ctui(jp, "stop", first["id"], "--grace", "2")
    assert r.returncode == 0 and "cancelled" in r.stdout
    # the queued one starts in the freed slot
    wait_for(
        lambda: (
            run_doc(jp, second["id"])["status"] == "running"
            and run_doc(jp, second["id"]).get("pgid")
        )
    )
    assert ctui(jp, "stop", second["id"], "--grace", "2").returncode == 0
    assert "already ended" in ctui(jp, "stop", second["id"]).stdout


def test_logs_follow_ends_when_the_run_ends(jp):
    doc = json.loads(ctui(jp, "run", "ok", "--json").stdout)
    r = ctui(jp, "logs", "-f", doc["id"])
    assert r.returncode == 0
    assert r.stdout == "lr is 0.01\n"


def test_logs_of_an_unknown_run_exits_2(jp):
    assert ctui(jp, "logs", "zzzz").returncode == 2


def test_jobs_lists_declared_jobs(jp):
    jobs = json.loads(ctui(jp, "jobs", "--json").stdout)
    assert set(jobs) == {"ok", "fail", "sleepy"}
    assert jobs["ok"]["params"] == {"lr": 0.01, "epochs": 3}
    assert "sleepy" in ctui(jp, "jobs").stdout
