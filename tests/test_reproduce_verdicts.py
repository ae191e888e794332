"""Honest verdicts: how ctui was started never makes a reproduction diverge, and what could not
be checked is "not verified", never "reproduced". Real git + DVC runs (test_reproduce's)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from ctui.manifest.env import allowed_variables
from tests.test_reproduce import cli, repo, run_job, template  # noqa: F401 - fixtures

pytestmark = [pytest.mark.timeout(180)]


def test_launcher_noise_never_diverges(repo: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from ctui.reproduce import reproduce_run

    original = run_job(repo)
    # reproduce from a shell where `uv run` and an activated venv left their marks
    monkeypatch.setenv("UV_RUN_RECURSION_DEPTH", "1")
    monkeypatch.setenv("VIRTUAL_ENV", str(Path(sys.executable).parent.parent))
    monkeypatch.setenv("UV_PROJECT_ENVIRONMENT", ".venv")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/root/.terraformrc")
    result = reproduce_run(repo, original["id"])
    assert result["verdict"] == "reproduced", result
    assert result["outcome"] == "reproduced" and result["env_before"] == []


def test_an_env_that_could_not_be_recorded_is_not_verified(repo: Any) -> None:  # noqa: F811
    from ctui.reproduce import reproduce_run

    toml = repo.root / "ctui.toml"
    toml.write_text(toml.read_text().replace(
        '[jobs.noisy]', 'python = "no/such/python"\n\n[jobs.noisy]', 1
    ))  # fmt: skip
    original = run_job(repo)
    result = reproduce_run(repo, original["id"])
    assert result["outcome"] == "not verified", result
    assert not result["reproduced"]
    assert result["verdict"].startswith("not verified: env (not recorded for the original: ")
    assert "no/such/python" in result["verdict"]
    out = cli(repo, "reproduce", original["id"], "--json")
    assert out.returncode == 1, out.stderr
    doc = orjson.loads(out.stdout)
    assert doc["outcome"] == "not verified" and doc["unverified"][0]["section"] == "env"


def test_a_job_with_no_metrics_is_not_verified(repo: Any) -> None:  # noqa: F811
    from ctui.reproduce import reproduce_run

    toml = repo.root / "ctui.toml"
    toml.write_text(toml.read_text() + f'\n[jobs.silent]\ncommand = "{sys.executable} -c pass"\n')
    original = run_job(repo, "silent")
    result = reproduce_run(repo, original["id"])
    assert result["outcome"] == "not verified"
    assert "neither run recorded metrics" in result["verdict"]


def test_variables_follow_the_tool_they_belong_to() -> None:
    from ctui.config import ManifestConfig

    env = {
        "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow
        "TF_CLI_CONFIG_FILE": "/x",  # Terraform
        "TF_VAR_region": "eu",  # Terraform
        "UV_RUN_RECURSION_DEPTH": "1",
        "VIRTUAL_ENV": "/venv",
        "MLFLOW_RUN_ID": "abc",
        "OMP_NUM_THREADS": "4",
        "MYLAB_SEED": "7",
        "MYLAB_TOKEN": "s3cr3t-value-here",
        "NCCL_DEBUG": "INFO",
    }
    assert allowed_variables(env) == {
        "NCCL_DEBUG": "INFO", "OMP_NUM_THREADS": "4", "TF_CPP_MIN_LOG_LEVEL": "2",
    }  # fmt: skip
    opts = ManifestConfig(env_vars=["MYLAB_*"], exclude=["NCCL_*"])
    got = allowed_variables(env, opts)
    assert got["MYLAB_SEED"] == "7" and "NCCL_DEBUG" not in got
    assert got["MYLAB_TOKEN"] != "s3cr3t-value-here"  # a chosen secret is still redacted
