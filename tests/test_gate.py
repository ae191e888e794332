"""Gate rules, the gate's config keys and the champion table, below the CLI."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from ctui.config import load_config
from ctui.errors import ConfigError, CtuiError
from ctui.gate import champion as ch
from ctui.gate.evaluate import gate_run
from ctui.gate.rules import evaluate, parse_rule
from ctui.store import Store

pytestmark = pytest.mark.timeout(120)

RUN = {
    "id": "r2",
    "metrics": {"acc": 0.41, "loss": 0.3, "val/loss": 0.2},
    "params": {"lr": "0.01", "opt": "adam"},
    "peaks": {"max_rss": 1e9},
}
CHAMPION = {"id": "r1", "metrics": {"acc": 0.5, "val/loss": 0.3}, "params": {"lr": 0.1}}


# -- rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        "metric.acc >= champion.acc - 0.005",
        "metric.loss < 0.5",
        "peaks.max_rss < 8e9",
        "0.001 <= param.lr <= 0.1",
        'metric["val/loss"] < champion.metric["val/loss"]',
        "param.lr == champion.param.lr",
        "(metric.acc - champion.acc) / champion.acc > -0.01",
        "-metric.loss > -1",
        "param.opt == 'adam'",
    ],
)
def test_rules_that_parse(rule):
    assert parse_rule(rule).text == rule


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("acc > 1", "unknown field 'acc'"),
        ("foo.bar > 1", "unknown field 'foo.bar'"),
        ("metric > 1", "'metric' needs a name"),
        ("champion > 1", "'champion' needs a name"),
        ("metric.acc", "must be a comparison"),
        ("metric.acc >", "does not parse"),
        ("metric.acc = 1", "compare with =="),
        ("metric.acc > 1 and metric.loss < 2", "'and'/'or' are not allowed"),
        ("metric.acc ** 2 > 1", "'**' is not allowed"),
        ("metric.acc % 2 > 1", "'%' is not allowed"),
        ("__import__('os').system('true') > 1", "is not allowed"),
        ("metric.acc.upper() > 1", "is not allowed"),
        ("metric.acc in [1]", "'in' is not allowed"),
        ("metric.acc is None", "'is' is not allowed"),
        ("(metric.acc > 1) > 0", "only one comparison"),
        ("True > metric.acc", "'True' is not a number"),
        ("lambda: 1 > 0", "must be a comparison"),
        ("  ", "empty"),
    ],
)
def test_rules_that_do_not_parse_say_why(rule, reason):
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace("*", r"\*")):
        parse_rule(rule)


def test_a_failing_rule_shows_the_values_used():
    gate = evaluate(["metric.acc >= champion.acc - 0.005", "metric.loss < 0.5"], RUN, CHAMPION)
    assert gate["passed"] is False
    assert gate["champion"] == "r1"
    assert gate["verdict"] == "not promoted: metric.acc 0.41 >= champion.acc 0.5 - 0.005 failed"
    first, second = gate["rules"]
    assert first == {
        "rule": "metric.acc >= champion.acc - 0.005",
        "passed": False,
        "detail": "metric.acc 0.41 >= champion.acc 0.5 - 0.005 → 0.41 >= 0.495: failed",
    }
    assert second["passed"] is True
    assert second["detail"] == "metric.loss 0.3 < 0.5: passed"


def test_all_rules_passing_and_other_terms():
    rules = [
        "peaks.max_rss < 8e9",
        "0.001 <= param.lr <= 0.1",  # a numeric string param compares as a number
        'metric["val/loss"] < champion.metric["val/loss"]',
        "param.opt == 'adam'",
    ]
    gate = evaluate(rules, RUN, CHAMPION)
    assert gate["passed"] is True, gate
    assert gate["verdict"] == "promoted: all 4 rules passed"
    assert gate["rules"][2]["detail"] == (
        'metric["val/loss"] 0.2 < champion.metric["val/loss"] 0.3: passed'
    )


def test_a_missing_value_fails_the_rule_and_says_which():
    gate = evaluate(["metric.f1 > 0.5", "champion.param.missing < 1"], RUN, CHAMPION)
    assert not gate["passed"]
    assert [r["detail"] for r in gate["rules"]] == [
        "metric.f1 is missing",
        "champion.param.missing is missing (champion r1)",
    ]
    assert gate["verdict"] == (
        "not promoted: metric.f1 is missing; champion.param.missing is missing (champion r1)"
    )


def test_with_no_champion_champion_rules_are_skipped_and_absolute_rules_apply():
    rules = ["metric.acc >= champion.acc", "metric.loss < 0.5"]
    gate = evaluate(rules, RUN, None)
    assert gate["passed"] and gate["champion"] is None
    assert gate["rules"][0]["detail"] == "skipped: no champion yet"
    assert gate["verdict"] == "promoted: 1 rule passed, 1 skipped (no champion yet)"
    worse = {**RUN, "metrics": {"acc": 0.41, "loss": 0.8}}
    gate = evaluate(rules, worse, None)
    assert not gate["passed"]
    assert gate["verdict"] == "not promoted: metric.loss 0.8 < 0.5 failed"


def test_no_rules_and_odd_values():
    assert evaluate([], RUN, None)["verdict"] == "no gate rules: promoted (first run)"
    assert evaluate([], RUN, CHAMPION)["verdict"] == "no gate rules: promoted"
    gate = evaluate(["metric.acc / 0 > 1", "param.opt < 1"], RUN, CHAMPION)
    assert [r["detail"] for r in gate["rules"]] == [
        "division by zero",
        "'adam' and 1 cannot be ordered: not both numbers",
    ]


# -- config ---------------------------------------------------------------------------------


def _config(tmp_path: Path, gate: str, extra: str = "") -> Any:
    (tmp_path / "ctui.toml").write_text(
        f'[jobs.train]\ncommand = "python train.py"\n[jobs.train.gate]\n{gate}\n{extra}'
    )
    return load_config(tmp_path)


def test_gate_and_notify_keys(tmp_path):
    config = _config(
        tmp_path,
        textwrap.dedent(
            """
            rules = ["metric.acc >= champion.acc", "metric.loss < 0.5"]
            on_promote = "python deploy.py {run_id} {run_dir}"
            on_promote_timeout = "2m"
            on_promote_failure = "rollback"
            register = "clf"
            register_artifact = "model/"
            """
        ),
        '[notify]\ncommand = "echo {event} {verdict}"\non = ["rejected"]\ntimeout = "5s"\n',
    )
    gate = config.job("train").gate
    assert gate.rules == ["metric.acc >= champion.acc", "metric.loss < 0.5"]
    assert gate.on_promote == "python deploy.py {run_id} {run_dir}"
    assert (gate.on_promote_timeout, gate.on_promote_failure) == (120.0, "rollback")
    assert (gate.register, gate.register_artifact) == ("clf", "model")
    assert (config.notify.command, config.notify.on, config.notify.timeout) == (
        "echo {event} {verdict}",
        ["rejected"],
        5.0,
    )
    defaults = _config(tmp_path, 'rules = "metric.acc > 0"')
    gate = defaults.job("train").gate
    assert (gate.rules, gate.on_promote_timeout, gate.on_promote_failure) == (
        ["metric.acc > 0"],
        600.0,
        "keep",
    )
    assert defaults.notify.on == ["promoted", "rejected"] and defaults.notify.command is None


@pytest.mark.parametrize(
    ("gate", "extra", "words"),
    [
        (
            'rules = ["metric.acc > 0", "metric.acc >"]',
            "",
            ["gate.rules", "rule 2", "metric.acc >"],
        ),
        ('rules = ["score > 1"]', "", ["gate.rules", "'score > 1'", "unknown field 'score'"]),
        ("rules = [1]", "", ["gate.rules", "strings"]),
        ('rules = []\nwhen = "x"', "", ["jobs.train.gate", "unknown key(s) when"]),
        ('on_promote_failure = "undo"', "", ["on_promote_failure", "'undo'"]),
        ("on_promote_timeout = -1", "", ["on_promote_timeout"]),
        ('on_promote = "deploy {model}"', "", ["gate.on_promote", "{model}"]),
        ("register = 3", "", ["gate.register"]),
        ("", '[notify]\non = ["done"]', ["notify.on", "'done'"]),
        ("", '[notify]\ncommand = ""', ["notify.command"]),
        ("", "[notify]\nurl = 1", ["notify", "unknown key(s) url"]),
    ],
)
def test_bad_gate_config_names_the_key(tmp_path, gate, extra, words):
    with pytest.raises(ConfigError) as info:
        _config(tmp_path, gate, extra)
    for word in words:
        assert word in info.value.message, (word, info.value.message)


# -- the champion table ---------------------------------------------------------------------


def _store(tmp_path: Path, *docs: dict[str, Any]) -> Store:
    store = Store(tmp_path / ".ctui" / "ctui.json")
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.initialise()
    store.put_runs(docs)
    return store


def _run(run_id: str, status: str = "succeeded", **fields: Any) -> dict[str, Any]:
    return {"id": run_id, "job": "train", "status": status, "created": time.time(), **fields}


def _Project(root: Path) -> Any:
    from ctui.project import Project

    return Project(root=root, state_dir=root / ".ctui")


def test_promote_records_and_refuses(tmp_path):
    store = _store(tmp_path, _run("r1"), _run("r2"), _run("bad", "failed"), _run("up", "running"))
    project: Any = _Project(tmp_path)
    (tmp_path / "ctui.toml").write_text('[jobs.train]\ncommand = "true"\n')
    first = ch.promote(project, store, "r1", by="gate", reason="first")
    second = ch.promote(project, store, "r2", by="manual")
    assert (first["previous"], second["previous"]) == (None, "r1")
    assert ch.champion_of(store, "train") == "r2"
    assert ch.champions(store) == {"train": "r2"}
    again = ch.promote(project, store, "r2", by="manual")
    assert again.get("unchanged") is True
    assert [(p["by"], p["run"]) for p in ch.history(store, "train")] == [
        ("gate", "r1"),
        ("manual", "r2"),
    ]
    for run_id, status in (("bad", "failed"), ("up", "running")):
        with pytest.raises(CtuiError, match=f"is {status}: only a succeeded run"):
            ch.promote(project, store, run_id, by="manual")
    with pytest.raises(ch.ChampionChanged):
        ch.promote(project, store, "r1", by="gate", expect="r1")
    assert ch.champion_of(store, "train") == "r2" and len(ch.history(store)) == 2


_PROMOTER = """
import sys
from pathlib import Path
from ctui.gate import champion as ch
from ctui.project import Project
from ctui.store import Store

root = Path.cwd()
project = Project(root=root, state_dir=root / ".ctui")
store = Store(project.store_file)
for run_id in sys.argv[2:]:
    ch.promote(project, store, run_id, by="manual")
"""


def test_concurrent_promotions_lose_nothing(tmp_path):
    ids = [f"r{i:02d}" for i in range(24)]
    store = _store(tmp_path, *(_run(i) for i in ids))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROMOTER, str(store.path), *ids[k::4]],
            cwd=tmp_path,
            stderr=subprocess.PIPE,
        )
        for k in range(4)
    ]
    for proc in procs:
        assert proc.wait(timeout=90) == 0, proc.stderr.read() if proc.stderr else ""
    past = ch.history(store, "train")
    assert sorted(p["run"] for p in past) == ids
    # each promotion replaced the one before it: no two writers saw the same champion
    assert [p["previous"] for p in past] == [None, *(p["run"] for p in past[:-1])]
    assert ch.champion_of(store, "train") == past[-1]["run"]


def test_the_gate_records_a_reproduction_but_never_promotes_it(tmp_path):
    (tmp_path / "ctui.toml").write_text(
        '[jobs.train]\ncommand = "true"\n[jobs.train.gate]\nrules = ["metric.acc > 0.5"]\n'
    )
    store = _store(
        tmp_path,
        _run("orig", metrics={"acc": 0.9}),
        _run("again", metrics={"acc": 0.9}, reproduces="orig"),
        _run("worse", metrics={"acc": 0.1}),
    )
    project: Any = _Project(tmp_path)
    gate = gate_run(project, store, "again")
    assert gate is not None and gate["passed"] and not gate["promoted"]
    assert gate["verdict"] == ("passed, not promoted (a reproduction of orig): 1 rule passed")
    assert store.get_run("again")["gate"] == gate
    assert ch.champion_of(store, "train") is None and ch.history(store) == []
    gate = gate_run(project, store, "orig")
    assert gate is not None and gate["promoted"] and ch.champion_of(store, "train") == "orig"
    gate = gate_run(project, store, "worse")
    assert gate is not None and not gate["passed"] and not gate["promoted"]
    assert gate["verdict"] == "not promoted: metric.acc 0.1 > 0.5 failed"
    assert ch.champion_of(store, "train") == "orig"


def test_check_compares_the_champion_with_the_one_it_replaced(tmp_path):
    (tmp_path / "ctui.toml").write_text(
        '[jobs.train]\ncommand = "true"\n[jobs.train.gate]\nrules = ["metric.acc > champion.acc"]\n'
        '[jobs.plain]\ncommand = "true"\n'
    )
    store = _store(
        tmp_path,
        _run("a", metrics={"acc": 0.5}),
        _run("b", metrics={"acc": 0.7}),
        {**_run("p"), "job": "plain"},
    )
    project: Any = _Project(tmp_path)
    assert gate_run(project, store, "a")["promoted"]  # type: ignore[index]
    result = ch.check(project, store, "a")  # the first champion: nothing before it
    assert result["passed"] and result["rules"][0]["detail"] == "skipped: no champion before it"
    assert gate_run(project, store, "b")["promoted"]  # type: ignore[index]
    result = ch.check(project, store, "b")  # the champion: against the one it replaced
    assert result["passed"] and result["champion"] == "a"
    assert result["verdict"] == "gate passed: 1 rule passed"
    result = ch.check(project, store, "a")
    assert not result["passed"] and result["champion"] == "b"
    assert result["verdict"] == "gate failed: metric.acc 0.5 > champion.acc 0.7 failed"
    with pytest.raises(CtuiError, match="job 'plain' has no gate"):
        ch.check(project, store, "p")
    assert gate_run(project, store, "p") is None and "gate" not in store.get_run("p")


def test_a_promotion_in_between_makes_the_gate_decide_again(tmp_path, monkeypatch):
    (tmp_path / "ctui.toml").write_text(
        '[jobs.train]\ncommand = "true"\n[jobs.train.gate]\nrules = ["metric.acc > champion.acc"]\n'
    )
    store = _store(
        tmp_path,
        _run("a", metrics={"acc": 0.5}),
        _run("b", metrics={"acc": 0.9}),
        _run("c", metrics={"acc": 0.7}),
    )
    project: Any = _Project(tmp_path)
    assert gate_run(project, store, "a")["promoted"]  # type: ignore[index]
    real = ch.promote
    calls: list[str] = []

    def racing(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(args[2])
        if len(calls) == 1:  # another writer promotes b after c was judged against a
            real(project, store, "b", by="manual")
        return real(*args, **kwargs)

    monkeypatch.setattr(ch, "promote", racing)
    gate = gate_run(project, store, "c")
    assert calls == ["c"]  # tried once against a, then judged again against b: failed
    assert gate is not None and not gate["passed"] and gate["champion"] == "b"
    assert gate["verdict"] == "not promoted: metric.acc 0.7 > champion.acc 0.9 failed"
    assert ch.champion_of(store, "train") == "b"
    assert [p["run"] for p in ch.history(store)] == ["a", "b"]
