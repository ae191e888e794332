"""Config keys of the wrong type, files that are not UTF-8, and `ctui sync` with MLflow down:
each is one line naming the key or file, the documented exit code, and nothing changed."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from cli_helpers import ctui, one_line_error
from jobs_helpers import PY, wait_final, write_config

from ctui.errors import ExitCode
from ctui.integrations.dvc_metrics import read_file, read_metrics
from ctui.jobs.launch import launch_run
from ctui.store import Store

pytestmark = pytest.mark.timeout(120)


JOB = '[jobs.a]\ncommand = "echo hi"\n'


@pytest.mark.parametrize(
    ("toml", "key", "words"),
    [
        ('[mlflow]\nenabled = "false"\n', "mlflow.enabled", "true or false"),
        ("[mlflow]\ntracking_uri = 5\n", "mlflow.tracking_uri", "a string"),
        ("[mlflow]\nexperiment = [1]\n", "mlflow.experiment", "a string"),
        (JOB + "workdir = 5\n", "jobs.a.workdir", "a folder path"),
        (JOB + 'params_env = "no"\n', "jobs.a.params_env", "true or false"),
        (JOB + 'shell = "yes"\n', "jobs.a.shell", "true or false"),
        (JOB + "image = 5\n", "jobs.a.image", "an image name"),
        (JOB + "env = { X = [1] }\n", "jobs.a.env.X", "a string or number"),
        (JOB + 'slurm.cpus = "many"\n', "jobs.a.slurm.cpus", "a positive integer"),
        (JOB + "slurm.cpus = 0\n", "jobs.a.slurm.cpus", "at least 1"),
        (JOB + "slurm.partition = 3\n", "jobs.a.slurm.partition", "a partition name"),
        (JOB + "slurm.mem = [1]\n", "jobs.a.slurm.mem", "a string"),
        (JOB + 'max_concurrent = "2"\n', "jobs.a.max_concurrent", "a positive integer"),
        ("[monitor]\ninterval = -1\n", "monitor.interval", "more than 0"),
        ("[monitor]\ninterval = 0\n", "monitor.interval", "more than 0"),
        ("[monitor]\ninterval = nan\n", "monitor.interval", "more than 0"),
        ('[monitor]\ninterval = "fast"\n', "monitor.interval", "a duration"),
        ("[monitor]\nintervall = 1\n", "monitor", "unknown key"),
        (
            JOB + '[triggers.t]\njob = "a"\non = "schedule"\nparams = { x = [1] }\n',
            "triggers.t.params.x",
            "string, number or boolean",
        ),
        ("monitor = 5\n", "monitor", "expected a table"),
        (
            JOB + '[triggers.t]\njob = "a"\non = "schedule"\ncooldown = -5\n',
            "triggers.t.cooldown",
            "0 or more",
        ),
    ],
)
def test_a_key_of_the_wrong_type_is_named_and_exits_2(
    tmp_path: Path, toml: str, key: str, words: str
) -> None:
    (tmp_path / "ctui.toml").write_text(toml)
    assert ctui(tmp_path, "init").returncode in (0, ExitCode.BAD_INPUT)
    for command in (("jobs",), ("run", "a")):
        out = ctui(tmp_path, *command)
        one_line_error(out, ExitCode.BAD_INPUT, "ctui.toml", f"[{key}", words)
    assert (tmp_path / "ctui.toml").read_text() == toml  # nothing rewritten
    store = tmp_path / ".ctui" / "ctui.json"
    assert not store.exists() or Store(store).runs() == []  # nothing launched
    assert not (tmp_path / ".ctui" / "mlflow.db").exists()  # "false" never turned MLflow on


def test_good_types_still_load(tmp_path: Path) -> None:
    toml = (
        JOB + 'workdir = "."\nparams_env = false\nenv = { N = 3, S = "s" }\n'
        'slurm = { cpus = 4, mem = "8G", time = 60, partition = "gpu" }\n'
        '[monitor]\ninterval = "500ms"\n[mlflow]\nenabled = false\n'
    )
    (tmp_path / "ctui.toml").write_text(toml)
    from ctui.config import load_config

    config = load_config(tmp_path)
    job = config.job("a")
    assert (job.workdir, job.params_env, job.env) == (".", False, {"N": "3", "S": "s"})
    assert (job.slurm.cpus, job.slurm.mem, job.slurm.time) == (4, "8G", "60")
    assert config.monitor_interval == 0.5 and config.mlflow.enabled is False


def test_a_config_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    raw = b'[jobs.a]\ncommand = "echo \xff\xfe"\n'
    (tmp_path / "ctui.toml").write_bytes(raw)
    out = ctui(tmp_path, "jobs")
    one_line_error(out, ExitCode.BAD_INPUT, "ctui.toml", "not UTF-8", "line 2")
    assert "UnicodeDecodeError" not in out.stderr
    assert (tmp_path / "ctui.toml").read_bytes() == raw


def test_a_pyproject_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    raw = b'[tool.ctui.jobs.a]\ncommand = "echo"\n# \xc3\x28\n'
    (tmp_path / "pyproject.toml").write_bytes(raw)
    one_line_error(ctui(tmp_path, "jobs"), ExitCode.BAD_INPUT, "pyproject.toml", "not UTF-8")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file: no unreadable config")
def test_an_unreadable_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "ctui.toml"
    config.write_text(JOB)
    config.chmod(0)
    try:
        one_line_error(ctui(tmp_path, "jobs"), ExitCode.BAD_INPUT, "ctui.toml", "cannot be read")
    finally:
        config.chmod(0o644)


# -- metrics files ----------------------------------------------------------------------------


def test_one_bad_metrics_file_costs_only_its_own_metrics(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text(json.dumps({"acc": 0.9}))
    (tmp_path / "latin1.json").write_bytes(b'{"caf\xe9": 1}')
    (tmp_path / "broken.yaml").write_text("a: [unclosed\n")
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "later.yaml").write_text("loss: 0.1\n")
    notes: list[str] = []
    names = ["good.json", "latin1.json", "broken.yaml", "folder.json", "missing.json", "later.yaml"]
    got = read_metrics(tmp_path, names, notes=notes)
    assert got == {"acc": 0.9, "loss": 0.1}
    assert len(notes) == 3, notes
    assert any("latin1.json" in n and "not UTF-8" in n for n in notes)
    assert any("broken.yaml" in n and "not valid YAML" in n for n in notes)
    assert any("folder.json" in n and "cannot be read" in n for n in notes)
    assert read_file(tmp_path / "missing.json", notes) == {} and len(notes) == 3


def test_a_run_with_a_non_utf8_metrics_file_keeps_its_other_metrics(project) -> None:
    job = (
        "from ctui import track\n"
        "track.log_metric('loss', 0.25)\n"
        "open('good.json', 'w').write('{\"f1\": 0.8}')\n"
        "open('bad.json', 'wb').write(b'{\"x\": \"\\xff\"}')\n"
    )
    (project.root / "job.py").write_text(job)
    write_config(
        project.root,
        f'[jobs.m]\ncommand = "{PY} job.py"\nmetrics = ["bad.json", "good.json"]\n',
    )
    final = wait_final(project, launch_run(project, "m", {})["id"], timeout=60)
    assert final["status"] == "succeeded", final
    assert final["metrics"] == {"loss": 0.25, "f1": 0.8}
    log = (project.run_dir(final["id"]) / "supervisor.log").read_text()
    assert "bad.json skipped: not UTF-8" in log and "Traceback" not in log


# -- ctui sync with the server down -----------------------------------------------------------


def test_sync_with_mlflow_down_exits_2_and_keeps_the_run_pending(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    (tmp_path / "ctui.toml").write_text(
        f'{JOB}[mlflow]\nenabled = true\ntracking_uri = "{uri}"\nexperiment = "down"\n'
    )
    assert ctui(tmp_path, "init").returncode == 0
    run = {
        "id": "0aaaaaaa0001",
        "job": "a",
        "status": "succeeded",
        "started": 1_790_000_000.0,
        "ended": 1_790_000_010.0,
        "metrics": {"acc": 0.5},
        "mlflow": {"run_id": None, "experiment": "down", "tracking_uri": uri, "sync": "pending"},
    }
    store = Store(tmp_path / ".ctui" / "ctui.json")
    store.put_runs([run])
    out = ctui(tmp_path, "sync")
    one_line_error(out, ExitCode.BAD_INPUT, "not reachable", "1 run(s) still pending")
    assert "still pending 0aaaaaaa0001" in out.stdout
    out = ctui(tmp_path, "sync", "--json")
    assert out.returncode == ExitCode.BAD_INPUT
    assert json.loads(out.stdout)["pending"] == ["0aaaaaaa0001"]
    assert store.get_run("0aaaaaaa0001")["mlflow"]["sync"] == "pending"  # nothing lost
