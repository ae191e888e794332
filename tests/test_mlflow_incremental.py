"""`ctui import mlflow --since last`: only what started or ended since the last import, and
when nothing did, an answer without importing mlflow — on a real sqlite store and a real
`mlflow server` on 127.0.0.1 (the shared-server case)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.test_mlflow_bridge import _no_user_mlflow_env, new_mlflow_store  # noqa: F401
from tests.test_mlflow_server import Server, server  # noqa: F401 - session fixture

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parent.parent
#: runs the real CLI in a fresh interpreter and says whether mlflow got imported
PROBE = (
    "import sys\n"
    "from ctui.cli import main\n"
    "try:\n"
    "    main()\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "else:\n"
    "    code = 0\n"
    "print('MLFLOW_IMPORTED' if 'mlflow' in sys.modules else 'MLFLOW_NOT_IMPORTED')\n"
    "sys.exit(code)\n"
)


def ctui(project: Any, *args: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=180,
    )
    imported = "MLFLOW_IMPORTED" in proc.stdout
    return proc, imported


def _json(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout.rsplit("MLFLOW_", 1)[0]  # the probe's last line is not the command's


def counts(proc: subprocess.CompletedProcess[str]) -> dict[str, int]:
    assert proc.returncode == 0, proc.stderr
    out: dict[str, int] = orjson.loads(_json(proc))
    return out


def _runs(uri: str, experiment: str, n: int, *, finished: bool = True) -> list[str]:
    from mlflow.tracking import MlflowClient

    cl = MlflowClient(tracking_uri=uri)
    exp = cl.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else cl.create_experiment(experiment)
    ids = []
    for i in range(n):
        run = cl.create_run(exp_id, run_name=f"r{i}")
        cl.log_metric(run.info.run_id, "loss", 1.0 / (i + 1), step=0)
        if finished:
            cl.set_terminated(run.info.run_id, "FINISHED")
        ids.append(run.info.run_id)
    return ids


def _incremental(project: Any, uri: str, experiment: str) -> None:
    args = ("import", "mlflow", "--tracking-uri", uri, "--experiment", experiment, "--json")
    first = _runs(uri, experiment, 3)
    live = _runs(uri, experiment, 1, finished=False)[0]
    proc, _ = ctui(project, *args, "--since", "last")  # no import yet: everything
    assert counts(proc) == {"imported": 4, "updated": 0, "unchanged": 0}

    proc, imported = ctui(project, *args, "--since", "last")
    assert counts(proc)["imported"] == 0
    assert imported  # a live run is asked about again: that needs MLflow

    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=uri).set_terminated(live, "FINISHED")
    proc, _ = ctui(project, *args, "--since", "last")
    assert counts(proc) == {"imported": 0, "updated": 1, "unchanged": 0}

    proc, imported = ctui(project, *args, "--since", "last")  # nothing new, nothing live
    assert counts(proc) == {"imported": 0, "updated": 0, "unchanged": 0}
    assert not imported  # answered without importing mlflow

    _runs(uri, experiment, 2)
    proc, _ = ctui(project, *args, "--since", "last")
    assert counts(proc) == {"imported": 2, "updated": 0, "unchanged": 0}
    docs = orjson.loads(_json(ctui(project, "runs", "--json", "--limit", "100")[0]))
    mine = [d for d in docs if (d.get("mlflow") or {}).get("experiment") == experiment]
    assert len(mine) == 6 and {d["status"] for d in mine} == {"succeeded"}
    assert set(first) <= {d["mlflow"]["run_id"] for d in mine}


def test_incremental_import_from_a_sqlite_store(
    project: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _incremental(project, new_mlflow_store(tmp_path_factory, "incremental"), "inc-sqlite")


def test_incremental_import_from_a_shared_server(project: Any, server: Server) -> None:  # noqa: F811
    _incremental(project, server.url, "inc-server")


def test_a_bad_since_is_one_line_and_exit_2(project: Any) -> None:
    proc, _ = ctui(project, "import", "mlflow", "--since", "yesterday-ish")
    assert proc.returncode == 2
    assert "--since 'yesterday-ish' is not `last`, a duration or a date" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_watch_mirrors_a_tracking_server(
    project: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    uri = new_mlflow_store(tmp_path_factory, "mirror")
    _runs(uri, "mirrored", 2)
    (project.root / "ctui.toml").write_text(
        f'[mlflow]\ntracking_uri = "{uri}"\nmirror = "1m"\nmirror_experiment = "mirrored"\n'
    )
    proc, _ = ctui(project, "watch", "--once", "--json")
    assert proc.returncode == 0, proc.stderr
    docs = orjson.loads(_json(ctui(project, "runs", "--json")[0]))
    assert sorted(d["mlflow"]["run_name"] for d in docs) == ["r0", "r1"]
    _runs(uri, "mirrored", 1)
    proc, _ = ctui(project, "watch", "--once")  # within the minute: not due yet
    assert len(orjson.loads(_json(ctui(project, "runs", "--json")[0]))) == 2
