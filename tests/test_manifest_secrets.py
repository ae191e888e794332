"""Planted secrets never reach a stored manifest; the redaction helpers others reuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctui.manifest import capture, save
from ctui.manifest.redact import (
    REDACTED,
    is_secret_name,
    redact_bytes,
    redact_env,
    redact_text,
    strip_url_credentials,
)
from ctui.objects import ObjectStore
from tests.conftest import git

pytestmark = pytest.mark.timeout(60)

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GH_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
GH_PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
HF_TOKEN = "hf_" + "abcdefghijklmnopqrstuvwxyzABCDEFGH"
PASSWORD = "correct-horse-battery-staple"
URL_PASS = "s3cr3t-url-pass"

SECRETS = [AWS_KEY, AWS_SECRET, GH_TOKEN, GH_PAT, HF_TOKEN, PASSWORD, URL_PASS]


def planted_env() -> dict[str, str]:
    return {
        "PATH": "/usr/bin",
        "MLFLOW_TRACKING_URI": f"https://alice:{URL_PASS}@mlflow.example.com",
        "MLFLOW_TRACKING_PASSWORD": PASSWORD,
        "HF_TOKEN": HF_TOKEN,
        "HF_HOME": "/data/hf",
        "DVC_REMOTE_NOTE": f"uses {AWS_KEY}",  # a token shape under an innocent name
        "TORCH_EXTRA": GH_PAT,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,  # not allow-listed at all
        "WANDB_MODE": "offline",
    }


def test_planted_secrets_never_reach_the_object_store(git_repo: Path, tmp_path: Path) -> None:
    git(git_repo, "remote", "add", "origin", f"https://{GH_TOKEN}@github.com/acme/model.git")
    git(git_repo, "remote", "add", "mirror", f"https://bob:{URL_PASS}@git.example.com/model.git")
    # an uncommitted change that contains a key: the stored patch is redacted too
    (git_repo / "config.py").write_text(f'AWS_KEY = "{AWS_KEY}"\npassword = "{PASSWORD}"\n')
    git(git_repo, "add", "config.py")
    from ctui.config import ManifestConfig

    # MLflow's variables are not recorded by default; a user who asks for them gets them
    # redacted
    wanted = ManifestConfig(env_vars=["MLFLOW_*"])
    m = capture(git_repo, sections=["code", "env"], env=planted_env(), options=wanted)
    objects = ObjectStore(tmp_path / "objects")
    save(objects, m)
    stored = b"".join(objects.get_bytes(oid) for oid in objects.all_ids())
    for secret in SECRETS:
        assert secret.encode() not in stored, secret
    code = m["sections"]["code"]
    assert code["remotes"]["origin"] == "https://github.com/acme/model.git"
    assert code["remotes"]["mirror"] == "https://git.example.com/model.git"
    assert code["patch"]["redactions"] == 2
    variables = m["sections"]["env"]["variables"]
    assert variables["MLFLOW_TRACKING_PASSWORD"] == REDACTED
    assert variables["MLFLOW_TRACKING_URI"] == "https://mlflow.example.com"
    assert variables["HF_HOME"] == "/data/hf"  # harmless values survive
    assert variables["WANDB_MODE"] == "offline"
    assert "AWS_SECRET_ACCESS_KEY" not in variables


def test_cli_json_output_carries_no_secret(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ctui.cli import app

    git(git_repo, "remote", "add", "origin", f"https://x-access-token:{GH_TOKEN}@github.com/a/b")
    for k, v in planted_env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(git_repo)
    result = CliRunner().invoke(app, ["manifest", "--json"])
    assert result.exit_code == 0, result.output
    assert '"remotes"' in result.output and "github.com/a/b" in result.output
    for secret in SECRETS:
        assert secret not in result.output


@pytest.mark.parametrize(
    "name", ["GITHUB_TOKEN", "db_password", "AWS_SECRET_ACCESS_KEY", "WANDB_API_KEY",
             "HTTP_AUTHORIZATION", "SSH_PRIVATE", "SENTRY_DSN", "MY_PASS", "SESSION_ID"],
)  # fmt: skip
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["PATH", "PWD", "OMP_NUM_THREADS", "LANG", "PASSTHROUGH_MODE"])
def test_harmless_names(name: str) -> None:
    assert not is_secret_name(name)


def test_strip_url_credentials() -> None:
    assert strip_url_credentials("https://u:p@host/x") == "https://host/x"
    assert strip_url_credentials(f"https://{GH_TOKEN}@github.com/o/r") == "https://github.com/o/r"
    assert strip_url_credentials("git@github.com:o/r.git") == "git@github.com:o/r.git"
    assert strip_url_credentials("s3://bucket/key") == "s3://bucket/key"
    assert (
        strip_url_credentials("https://h/x?token=abc&page=2")
        == f"https://h/x?token={REDACTED}&page=2"
    )


def test_redact_text_finds_token_shapes_in_prose() -> None:
    text = (
        f"key {AWS_KEY} then {GH_TOKEN} and {GH_PAT}; Authorization: Bearer abc.def.ghi\n"
        f"export PASSWORD={PASSWORD}\nurl postgres://svc:{URL_PASS}@db:5432/x\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n"
    )
    out = redact_text(text)
    for secret in [AWS_KEY, GH_TOKEN, GH_PAT, PASSWORD, URL_PASS, "abc.def.ghi", "MIIEow"]:
        assert secret not in out
    assert "postgres://<redacted>@db:5432/x" in out
    assert redact_text("epoch 3 loss=0.12 acc=0.91") == "epoch 3 loss=0.12 acc=0.91"


def test_redact_env_and_bytes() -> None:
    assert redact_env({"A_TOKEN": "x", "PATH": "/bin"}) == {"A_TOKEN": REDACTED, "PATH": "/bin"}
    data = b"\xff\xfe binary " + AWS_KEY.encode() + b" \x00 tail"
    out, hits = redact_bytes(data)
    assert hits == 1 and AWS_KEY.encode() not in out
    assert out.startswith(b"\xff\xfe binary ") and out.endswith(b" \x00 tail")
    assert redact_bytes(b"\x00\x01 clean") == (b"\x00\x01 clean", 0)
