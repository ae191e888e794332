"""The generated Slurm batch script, run by bash right here (no cluster needed): every argv
token survives quoting, the node steps capture compute and write the exit record."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from ctui.errors import ExitCode, UnavailableError
from ctui.jobs.backends import slurm as slurm_backend
from ctui.jobs.backends.base import LaunchSpec
from ctui.store import Store

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parent.parent


def _spec(project: Any, run_id: str, argv: list[str], **slurm: Any) -> LaunchSpec:
    run_dir = project.run_dir(run_id)
    run_dir.mkdir(parents=True)
    spec = LaunchSpec(
        run_id=run_id,
        job="train",
        argv=argv,
        env={"CTUI_RUN_DIR": str(run_dir), "ODD": "a b'c\"$HOME`x`"},
        cwd=str(project.root),
        project_root=str(project.root),
        run_dir=str(run_dir),
        log_path=str(run_dir / "output.log"),
        backend="slurm",
        gpus=[0, 1],
        options={
            "slurm": slurm,
            "state_dir": str(project.state_dir),
            "store_file": str(project.store_file),
            "metrics": [],
        },
    )
    (run_dir / "spec.json").write_bytes(orjson.dumps(spec.to_dict()))
    Store(project.store_file).insert_run(
        {
            "id": run_id,
            "job": "train",
            "status": "queued",
            "backend": "slurm",
            "manifest": {},
            "slurm": {"job_id": "1"},
        }
    )
    return spec


def test_options_become_sbatch_lines(project: Any) -> None:
    spec = _spec(
        project,
        "script000001",
        ["true"],
        partition="gpu",
        time="1:00:00",
        cpus=4,
        mem="8G",
        setup=["module load cuda"],
    )
    script = slurm_backend.batch_script(spec)
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --time=1:00:00",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=8G",
        "#SBATCH --gres=gpu:2",
        f"#SBATCH --output={spec.log_path}",
        "module load cuda",
    ):
        assert line in script.splitlines()


def test_script_runs_the_exact_argv_and_records_the_exit(project: Any, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    nasty = f"x; touch {marker}; $(touch {marker}) `touch {marker}` ' \""
    argv = [
        sys.executable,
        "-c",
        "import json, os, sys; print(json.dumps([sys.argv[1:], os.environ['ODD']]));sys.exit(3)",
        nasty,
        "two words",
    ]
    spec = _spec(project, "script000002", argv)
    script = Path(spec.run_dir) / "slurm.sbatch"
    script.write_text(slurm_backend.batch_script(spec))

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        ["bash", str(script)], cwd=project.root, env=env, capture_output=True, text=True
    )

    assert done.returncode == 3, done.stderr
    got = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert got == [[nasty, "two words"], "a b'c\"$HOME`x`"]
    assert not marker.exists()
    record = slurm_backend.read_exit_record(Path(spec.run_dir))
    assert record is not None and record["exit_code"] == 3
    run = Store(project.store_file).get_run(spec.run_id)
    assert run["status"] == "running" and run["host"]
    assert "compute" in run["manifest"]  # captured by the node-start step


def test_no_sbatch_is_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ctui.config import JobConfig

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UnavailableError) as err:
        slurm_backend.BACKEND.check(JobConfig(name="t", command="true", backend="slurm"))
    assert err.value.code == ExitCode.BAD_INPUT
    assert "sbatch not found" in err.value.message


def test_state_mapping_covers_the_issue() -> None:
    expect = {
        "PENDING": "queued",
        "RUNNING": "running",
        "COMPLETED": "succeeded",
        "FAILED": "failed",
        "NODE_FAIL": "failed",
        "OUT_OF_MEMORY": "failed",
        "CANCELLED": "cancelled",
        "TIMEOUT": "timeout",
    }
    for state, status in expect.items():
        assert slurm_backend.STATES[state] == status
    assert slurm_backend._exit_code("3:0") == (3, 0)
    assert slurm_backend._exit_code("0:15") == (0, 15)


def test_a_run_never_submitted_is_lost_after_a_grace(project: Any) -> None:
    import time

    old = {
        "id": "never0000001",
        "status": "queued",
        "backend": "slurm",
        "slurm": None,
        "created": time.time() - slurm_backend.SUBMIT_GRACE - 1,
    }
    young = {**old, "id": "never0000002", "created": time.time()}
    updates = slurm_backend.BACKEND.refresh(project, [old, young])
    assert updates["never0000001"]["status"] == "lost"
    assert "never0000002" not in updates


def test_sweep_grid_parsing() -> None:
    from ctui.errors import CtuiError
    from ctui.jobs.sweep import combinations, parse_sweep

    grid = parse_sweep(["lr=0.1, 0.01", "epochs=3,5"])
    assert grid == {"lr": ["0.1", "0.01"], "epochs": ["3", "5"]}
    assert len(combinations(grid)) == 4
    assert combinations(grid)[1] == {"lr": "0.1", "epochs": "5"}
    for bad in ("lr", "lr=", "=1,2"):
        with pytest.raises(CtuiError):
            parse_sweep([bad])
