"""Secrets never land in what ctui writes: the run document, `spec.json`, `ctui export`,
MLflow params and tags, and the lines MLflow prints through ctui — while the job still gets
the real values (a real supervisor, a real job, a real MLflow store)."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from jobs_helpers import PY, run_doc, wait_final, wait_for, write_config

from ctui.jobs import supervisor
from ctui.jobs.backends.base import LaunchSpec, StartError
from ctui.jobs.seal import keep_sealed, seal, sealed_dir, unseal_spec
from ctui.manifest.redact import (
    REDACTED,
    is_secret_param,
    redact_bytes,
    redact_doc,
    redact_text,
)

pytestmark = pytest.mark.timeout(120)

PASSWORD = "hunter2-Xy9-secret"
UNSEALS = getattr(supervisor, "unseal_spec", None) is unseal_spec
NEEDS_HOOK = pytest.mark.skipif(
    not UNSEALS, reason="the supervisor does not call unseal_spec yet (spec.json kept as is)"
)

# -- the patterns -------------------------------------------------------------------------------

LEAKS = {
    'db_password: str = "pw-0001-abc"': "pw-0001-abc",
    'db_password: str = "correct horse battery"': "correct horse",
    "Server=db;Database=x;Uid=sa;Pwd=Hunter2x;": "Hunter2x",
    '"Driver={SQL};Server=db;Uid=sa;Pwd=abc123"': "abc123",
    "SLACK = 'https://hooks.slack.com/services/T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx'": (
        "abcdefghijklmnopqrstuvwx"
    ),
    "key AKIAIOSFODNN7EXAMPLE then": "AKIAIOSFODNN7EXAMPLE",
    "GH=ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8": "A1b2C3d4E5f6",
    'curl -H "Authorization: Bearer abc.def.ghi"': "abc.def.ghi",
    'headers = {"Authorization": "Token 1234567890abcdef"}': "1234567890abcdef",
    "UV_INDEX_URL=https://u:pw-777@pypi.example.com/simple": "pw-777",
    "export PASSWORD=plain": "plain",
    "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY": "wJalrXUtnFEMI",
    "train.py --token=abcdefgh1234": "abcdefgh1234",
    '{"api_key": "k-123456"}': "k-123456",
}

HARMLESS = [
    "pwd = os.getcwd()",
    "const pwd = process.cwd();",
    "password = getpass.getpass()",
    "token = args.token",
    'secret = os.environ["SECRET"]',
    "max_tokens = 2048",
    "token_limit=2048",
    "tokenizer = AutoTokenizer.from_pretrained(name)",
    "a basic setup and a bearer of news",
    "the password is stored in the vault",
    "epoch 3 loss=0.12 acc=0.91",
    "def check_password(password: str) -> bool:",
    "password = None",
    "Use --token to pass your token",
    "git@github.com:acme/model.git",
    "https://hooks.slack.com/",
    'pad_token = "<pad>"',
    "tokenizer.pad_token = tokenizer.eos_token",
]


@pytest.mark.parametrize("text", list(LEAKS))
def test_redact_text_catches(text: str) -> None:
    out = redact_text(text)
    assert LEAKS[text] not in out and REDACTED in out
    assert redact_text(out) == out  # idempotent


@pytest.mark.parametrize("text", HARMLESS)
def test_redact_text_leaves_code_and_prose(text: str) -> None:
    assert redact_text(text) == text


def test_patch_redaction_counts_the_new_shapes() -> None:
    patch = (
        b'+db_password: str = "pw-0001-abc"\n'
        b'+CONN = "Server=db;Uid=sa;Pwd=Hunter2x;"\n'
        b"+HOOK = 'https://hooks.slack.com/services/T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx'\n"
        b"+pwd = os.getcwd()\n"
    )
    out, hits = redact_bytes(patch)
    assert hits == 3
    assert b"pw-0001-abc" not in out and b"Hunter2x" not in out and b"abcdefghijklmn" not in out
    assert b"+pwd = os.getcwd()\n" in out


@pytest.mark.parametrize(
    "text",
    ["a-" * 200_000, "a." * 200_000, "password: " * 50_000, "s" * 1_000_000, " " * 1_000_000,
     "token=" * 100_000, "http://" * 50_000, "Authorization: " * 50_000],
    ids=["dashes", "dots", "keys", "run", "spaces", "assignments", "schemes", "headers"],
)  # fmt: skip
def test_redaction_stays_linear_on_hostile_text(text: str) -> None:
    """A job's 1 MB progress line or a minified file in a patch: no pattern backtracks over
    the whole text at every position (that took minutes; the module's timeout catches it)."""
    assert len(redact_text(text)) > 0


@pytest.mark.parametrize(
    "name", ["password", "db_password", "hf_token", "apiKey", "aws-access-key", "credentials",
             "client_secret", "PASSWD", "slack_webhook_url"],
)  # fmt: skip
def test_secret_params(name: str) -> None:
    assert is_secret_param(name)


@pytest.mark.parametrize(
    "name", ["lr", "max_tokens", "key", "keyframes", "session", "sort_key", "tokenizer",
             "n_passes", "pass_at_k", "epochs", "pad_token", "eosToken", "token_type"],
)  # fmt: skip
def test_ordinary_params(name: str) -> None:
    assert not is_secret_param(name)


def test_redact_doc_is_the_one_pass() -> None:
    doc = {
        "id": "r1",
        "params": {"password": PASSWORD, "lr": 0.1, "max_tokens": 512, "url": "http://u:pw9@h"},
        "command": ["python", "train.py", f"--password={PASSWORD}", "--lr", "0.1"],
        "log_tail": ["Authorization: Bearer abcdefghijklmnop", "epoch 1"],
        "error": "failed: UV_INDEX_URL=https://u:pw-777@pypi.example.com",
        "metrics": {"acc": 0.9},
    }
    out = redact_doc(doc)
    assert PASSWORD not in orjson.dumps(out).decode()
    assert "pw9" not in str(out) and "pw-777" not in str(out) and "abcdefghijklmnop" not in str(out)
    assert out["params"]["password"] == REDACTED
    assert out["params"]["lr"] == 0.1 and out["params"]["max_tokens"] == 512
    assert out["command"][2] == f"--password={REDACTED}" and out["command"][4] == "0.1"
    assert out["log_tail"][1] == "epoch 1" and out["metrics"] == {"acc": 0.9}
    assert redact_doc(out) == out
    assert doc["params"]["password"] == PASSWORD  # a copy


# -- sealing: spec.json masked, the job gets the real values -------------------------------------


def _spec(argv: list[str], env: dict[str, str], run_id: str = "sealtest0001") -> LaunchSpec:
    return LaunchSpec(
        run_id=run_id, job="j", argv=argv, env=env, cwd="/", project_root="/", run_dir="/",
        log_path="/dev/null",
    )  # fmt: skip


@pytest.mark.skipif(sealed_dir() is None, reason="no memory file system here")
def test_seal_and_unseal_round_trip() -> None:
    argv = ["python", "t.py", "--pw", PASSWORD, "--epochs", "10"]
    env = {"CTUI_PARAM_PASSWORD": PASSWORD, "DB_PASSWORD": "from-config", "HOME_DIR": "/x"}
    safe_argv, safe_env, sealed = seal(argv, env, {"password": PASSWORD, "epochs": 10})
    assert safe_argv == ["python", "t.py", "--pw", REDACTED, "--epochs", "10"]
    assert safe_env == {"CTUI_PARAM_PASSWORD": REDACTED, "DB_PASSWORD": REDACTED, "HOME_DIR": "/x"}
    run_id = f"sealtest{os.getpid()}"
    assert keep_sealed(run_id, sealed)
    folder = sealed_dir()
    assert folder is not None and not os.stat(folder).st_mode & 0o077
    held = next(folder.glob(f"{run_id}.json"))
    assert not os.stat(held).st_mode & 0o077
    written = _spec(safe_argv, safe_env, run_id)
    written.options["sealed"] = {"params": ["password"]}
    real = unseal_spec(written)
    assert real.argv == argv and real.env == env
    assert not held.exists()  # taken back once
    with pytest.raises(StartError, match=r"secret values of this run \(password\) are gone"):
        unseal_spec(written)
    plain = _spec(["python", "t.py"], {"A": "1"})
    assert unseal_spec(plain) is plain  # nothing sealed: nothing to take back


def test_sealed_values_wait_only_in_a_private_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder others may read, or a symlink planted where it should be, is never used."""
    from ctui.jobs import seal as sealing

    runtime = tmp_path / "run-user"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    mine = runtime / "ctui-sealed"
    mine.mkdir(mode=0o755)
    mine.chmod(0o755)
    assert mine not in sealing._sealed_dirs()
    mine.chmod(0o700)
    assert mine in sealing._sealed_dirs()
    mine.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    mine.symlink_to(elsewhere)
    assert mine not in sealing._sealed_dirs()


SHOW = "import os, sys; print('got', sys.argv[1], *(os.environ[k] for k in sys.argv[2:]))\n"
JOB = f"""
[jobs.train]
command = "{PY} show.py {{password}} CTUI_PARAM_PASSWORD DB_PASSWORD"
params = {{ password = "default-pw-123", lr = 0.1 }}
env = {{ DB_PASSWORD = "cfg-pw-456" }}
"""


def _launch(project: Any) -> dict[str, Any]:
    from ctui.jobs.launch import launch_run

    write_config(project.root, JOB)
    (project.root / "show.py").write_text(SHOW)
    doc = launch_run(project, "train", {"password": PASSWORD})
    return wait_final(project, doc["id"], timeout=60)


def test_secret_param_reaches_the_job_but_not_the_store_or_export(project: Any) -> None:
    from tests.test_jobs_cli import ctui

    final = _launch(project)
    assert final["status"] == "succeeded", final
    log = (project.run_dir(final["id"]) / "output.log").read_text()
    assert f"got {PASSWORD} {PASSWORD} cfg-pw-456" in log  # the job had the real values
    doc = run_doc(project, final["id"])
    assert doc["params"] == {"password": REDACTED, "lr": 0.1}
    assert PASSWORD not in orjson.dumps(doc).decode()
    assert PASSWORD not in project.store_file.read_text()
    out = ctui(project, "export", "--no-objects")
    assert out.returncode == 0 and final["id"] in out.stdout
    assert PASSWORD not in out.stdout and REDACTED in out.stdout
    # a rerun from the record refuses the masked value, with the way out
    again = ctui(project, "run", "train", "-p", f"password={REDACTED}")
    assert again.returncode == 2 and "give it again with -p password=" in again.stderr


@NEEDS_HOOK
def test_spec_json_holds_no_secret_and_the_job_still_gets_them(project: Any) -> None:
    final = _launch(project)
    assert final["status"] == "succeeded", final
    spec = (project.run_dir(final["id"]) / "spec.json").read_text()
    assert PASSWORD not in spec and "cfg-pw-456" not in spec and REDACTED in spec
    log = (project.run_dir(final["id"]) / "output.log").read_text()
    assert f"got {PASSWORD} {PASSWORD} cfg-pw-456" in log
    for path in project.state_dir.rglob("*"):
        if path.is_file() and path.name != "output.log":  # the job's own output is its own
            data = path.read_bytes()
            assert PASSWORD.encode() not in data and b"cfg-pw-456" not in data, path
    folder = sealed_dir()
    assert folder is not None and not list(folder.glob(f"{final['id']}.json"))


@NEEDS_HOOK
def test_a_queued_run_whose_secrets_are_gone_fails_with_the_reason(project: Any) -> None:
    """The machine restarted while it waited: nothing on disk to start it with; it fails
    saying why instead of running with `<redacted>`."""
    from ctui.jobs.launch import launch_run
    from ctui.jobs.stop import stop_run

    write_config(
        project.root,
        f"[jobs.train]\ncommand = \"{PY} -c 'import time; time.sleep(60)' {{password}}\"\n"
        'params = { password = "x" }\nmax_concurrent = 1\n',
    )
    first = launch_run(project, "train", {"password": PASSWORD})
    second = launch_run(project, "train", {"password": PASSWORD})
    assert second["status"] == "queued"
    folder = sealed_dir()
    assert folder is not None
    (folder / f"{second['id']}.json").unlink()  # what a reboot does to a memory file system
    wait_for(lambda: run_doc(project, first["id"]).get("pid"), timeout=60)
    stop_run(project, first["id"])
    final = wait_final(project, second["id"], timeout=60)
    assert final["status"] == "failed"
    assert "secret values of this run (password) are gone" in final["error"]


# -- MLflow -------------------------------------------------------------------------------------


def test_mlflow_chatter_is_redacted_and_view_run_lines_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ctui.integrations.mlflow_client import _quick_http

    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "false")  # the user's
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with _quick_http():
        assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"
        with _quick_http():  # nested (another thread of the TUI): still quiet
            print("🏃 View run sly-fox at: http://alice:pw-111@mlflow.example.com/#/runs/1")
        print("🧪 View experiment at: http://alice:pw-111@mlflow.example.com/#/experiments/1")
        sys.stderr.write("warning: token=abcd1234efgh\n")
        print("retrying http://alice:pw-222@mlflow.example.com/api", end="")  # no newline
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "false"
    text = err.getvalue()
    assert "View run" not in text and "View experiment" not in text
    assert "pw-111" not in text and "pw-222" not in text and "abcd1234efgh" not in text
    assert "retrying http://<redacted>@mlflow.example.com/api\n" in text


def test_mlflow_params_and_tags_are_masked(project: Any, tmp_path: Path) -> None:
    """A real local MLflow store: the run's params there hold no secret; a job that logged
    one itself through ctui.track is masked too."""
    from ctui.integrations import mlflow_bridge as bridge

    db = tmp_path / "mlflow.db"
    (project.root / "ctui.toml").write_text(
        JOB + f'\n[mlflow]\nenabled = true\ntracking_uri = "sqlite:///{db}"\nexperiment = "s"\n'
    )
    from ctui.jobs.launch import launch_run

    (project.root / "show.py").write_text(SHOW)
    doc = launch_run(project, "train", {"password": PASSWORD})
    (project.run_dir(doc["id"]) / "params.jsonl").write_bytes(
        orjson.dumps({"name": "hf_token", "value": "hf-own-secret-1"}) + b"\n"
    )
    final = wait_final(project, doc["id"], timeout=90)
    ml = wait_for(
        lambda: (
            (run_doc(project, final["id"]).get("mlflow") or {}).get("sync") == "ok"
            and run_doc(project, final["id"])["mlflow"]
        ),
        timeout=90,
    )
    got = bridge.client(f"sqlite:///{db}").get_run(ml["run_id"])
    assert got.data.params.get("password") == REDACTED
    assert got.data.params.get("hf_token") == REDACTED
    assert PASSWORD not in str(got.data.tags) and PASSWORD not in str(got.data.params)
    sup_log = project.run_dir(final["id"]) / "supervisor.log"
    assert PASSWORD not in (sup_log.read_text() if sup_log.exists() else "")


def test_a_pipelines_secret_param_is_masked_in_the_run_params() -> None:
    from ctui.jobs.capture import dvc_params

    data = {
        "status": "ok",
        "params": {
            "params.yaml": {"db.password": "hunter2", "train.lr": 0.1},
            "other.yaml": {"api_token": "tok-123456", "n": 3},
        },
    }
    assert dvc_params(data) == {
        "db.password": "<redacted>",
        "train.lr": 0.1,
        "other.yaml:api_token": "<redacted>",
        "other.yaml:n": 3,
    }
