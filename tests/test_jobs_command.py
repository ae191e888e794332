"""Params → argv tokens and environment variables; param parsing and validation."""

from __future__ import annotations

import pytest

from ctui.config import JobConfig
from ctui.errors import CtuiError
from ctui.jobs.command import (
    build_argv,
    build_env,
    coerce_param,
    param_env_name,
    parse_assignments,
    validate_params,
)


def job(command: str, **kw) -> JobConfig:
    return JobConfig(name="train", command=command, **kw)


def test_placeholders_are_filled_per_token_after_splitting():
    j = job("python train.py --lr={lr} --name {name} 'a {name} b'", params={"lr": 0.1, "name": ""})
    argv = build_argv(j, {"lr": 0.5, "name": "x; rm -rf / #"})
    assert argv == [
        "python",
        "train.py",
        "--lr=0.5",
        "--name",
        "x; rm -rf / #",
        "a x; rm -rf / # b",
    ]


def test_builtins_and_literal_braces():
    j = job("run --out {run_dir}/m.json --id {run_id} '{{\"k\": 1}}'")
    assert build_argv(j, {}, run_id="abc", run_dir="/r/abc") == [
        "run",
        "--out",
        "/r/abc/m.json",
        "--id",
        "abc",
        '{"k": 1}',
    ]


def test_unknown_placeholder_names_the_known_params():
    j = job("train --lr {lr} --bs {batch}", params={"lr": 0.1})
    with pytest.raises(CtuiError, match=r"\{batch\}.*known: lr"):
        build_argv(j, {"lr": 0.1})


def test_shell_opt_in_quotes_every_value():
    j = job("echo {msg} | tr a b", params={"msg": ""}, shell=True)
    argv = build_argv(j, {"msg": "$(touch x); `y` 'q'"})
    assert argv[:2] == ["/bin/sh", "-c"]
    assert argv[2] == "echo '$(touch x); `y` '\"'\"'q'\"'\"'' | tr a b"


def test_env_carries_run_and_params_and_the_jobs_env():
    j = job("x", params={"lr": 0.1, "data-dir": "d"}, env={"OMP_NUM_THREADS": "2"})
    env = build_env(j, {"lr": 0.5, "data-dir": "e"}, "/s/runs/r1")
    assert env["CTUI_RUN_DIR"] == "/s/runs/r1"
    assert env["CTUI_RUN_ID"] == "r1"
    assert env["CTUI_PARAM_LR"] == "0.5"
    assert env["CTUI_PARAM_DATA_DIR"] == "e"
    assert env["OMP_NUM_THREADS"] == "2"
    assert param_env_name("a.b") == "CTUI_PARAM_A_B"
    assert "CTUI_PARAM_LR" not in build_env(
        job("x", params={"lr": 1}, params_env=False), {"lr": 1}, "/r"
    )


@pytest.mark.parametrize(
    ("default", "raw", "expected"),
    [
        (0.1, "0.5", 0.5),
        (0.1, "3", 3.0),
        (3, "10", 10),
        (True, "false", False),
        (False, "yes", True),
        ("a", "0.5", "0.5"),
        (0.1, 2, 2.0),
    ],
)
def test_values_take_the_type_of_the_default(default, raw, expected):
    j = job("x", params={"p": default})
    value = coerce_param(j, "p", raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("default", "raw"), [(3, "3.5"), (0.1, "fast"), (True, "maybe"), (3, True)]
)
def test_ill_typed_values_are_refused(default, raw):
    with pytest.raises(CtuiError, match="expected"):
        coerce_param(job("x", params={"p": default}), "p", raw)


def test_validate_merges_defaults_and_rejects_unknown():
    j = job("x", params={"lr": 0.1, "epochs": 3})
    assert validate_params(j, {"epochs": "5"}) == {"lr": 0.1, "epochs": 5}
    with pytest.raises(CtuiError, match=r"no param 'lrr' \(known: epochs, lr\)"):
        validate_params(j, {"lrr": "1"})


def test_parse_assignments():
    assert parse_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(CtuiError, match="name=value"):
        parse_assignments(["novalue"])


def test_python_placeholder_is_the_interpreter_running_ctui() -> None:
    import sys

    from ctui.config import JobConfig
    from ctui.jobs.command import build_argv

    job = JobConfig(name="train", command="{python} train.py --lr {lr}", params={"lr": 0.1})
    assert build_argv(job, {"lr": 0.1}) == [sys.executable, "train.py", "--lr", "0.1"]
