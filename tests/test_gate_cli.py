"""The gate and the champion through the real `ctui` command line, with real jobs that log
their metrics with `ctui.track`: the verdicts, promotions, rollbacks and exit codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_helpers import ctui, one_line_error
from jobs_helpers import PY, run_doc, wait_for, write_config

from ctui.errors import ExitCode
from ctui.store import Store

pytestmark = pytest.mark.timeout(240)

TRAIN = """\
import sys
from ctui import track

acc = float(sys.argv[1])
track.log_metrics({"acc": acc, "loss": round(1 - acc, 6)})
"""

RULES = '["metric.acc >= champion.acc - 0.005", "metric.loss < 0.6"]'


def _config(rules: str = RULES, gate_extra: str = "", extra: str = "") -> str:
    return f"""
[jobs.train]
command = "{PY} train.py {{acc}}"
params = {{ acc = 0.3 }}

[jobs.train.gate]
rules = {rules}
{gate_extra}

[jobs.fail]
command = "{PY} -c 'raise SystemExit(4)'"

[jobs.sleepy]
command = "{PY} -c 'import time; print(\\"up\\", flush=True); time.sleep(60)'"
{extra}
"""


@pytest.fixture
def gp(project):
    (project.root / "train.py").write_text(TRAIN)
    write_config(project.root, _config())
    return project


def _launch(project: Any, job: str = "train", *params: str) -> str:
    args = [a for p in params for a in ("-p", p)]
    out = ctui(project.root, "run", job, *args, "--json")
    assert out.returncode == 0, out.stderr
    run_id: str = json.loads(out.stdout)["id"]
    return run_id


def _gated(project: Any, run_id: str) -> dict[str, Any]:
    """The run's `gate` field once the gate is done with it (a passed run: promoted too)."""

    def done() -> dict[str, Any] | None:
        doc = run_doc(project, run_id)
        assert doc["status"] in ("queued", "running", "succeeded"), doc
        gate = doc.get("gate")
        if gate and (not gate["passed"] or gate["promoted"] or doc.get("reproduces")):
            return dict(gate)
        return None

    try:
        result: dict[str, Any] = wait_for(done, timeout=60)
    except AssertionError:
        log = project.run_dir(run_id) / "supervisor.log"
        raise AssertionError(log.read_text() if log.exists() else "no supervisor.log") from None
    return result


def _train(project: Any, acc: float) -> tuple[str, dict[str, Any]]:
    run_id = _launch(project, "train", f"acc={acc}")
    return run_id, _gated(project, run_id)


def _json(project: Any, *args: str, code: int = 0) -> Any:
    out = ctui(project.root, *args, "--json")
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    return json.loads(out.stdout)


def test_only_a_better_run_is_promoted_and_promote_rolls_back(gp):
    first, gate = _train(gp, 0.5)
    assert gate["passed"] and gate["promoted"] and gate["champion"] is None
    assert gate["verdict"] == "promoted: 1 rule passed, 1 skipped (no champion yet)"
    assert _json(gp, "champion", "train")["id"] == first

    worse, gate = _train(gp, 0.45)
    assert not gate["passed"] and not gate["promoted"] and gate["champion"] == first
    assert gate["verdict"] == "not promoted: metric.acc 0.45 >= champion.acc 0.5 - 0.005 failed"
    assert gate["rules"][0]["detail"] == (
        "metric.acc 0.45 >= champion.acc 0.5 - 0.005 → 0.45 >= 0.495: failed"
    )
    assert gate["rules"][1] == {
        "rule": "metric.loss < 0.6",
        "passed": True,
        "detail": "metric.loss 0.55 < 0.6: passed",
    }
    assert _json(gp, "champion", "train")["id"] == first

    better, gate = _train(gp, 0.7)
    assert gate["passed"] and gate["promoted"] and gate["champion"] == first
    assert gate["verdict"] == "promoted: all 2 rules passed"
    assert _json(gp, "champion", "train")["id"] == better

    # `ctui gate` re-evaluates against today's champion and explains; promotes nothing
    out = ctui(gp.root, "gate", worse)
    assert out.returncode == ExitCode.FAILED, out.stderr
    assert "metric.acc 0.45 >= champion.acc 0.7 - 0.005 → 0.45 >= 0.695: failed" in out.stdout
    assert "metric.loss 0.55 < 0.6: passed" in out.stdout
    assert f"against champion {better}" in out.stdout
    assert "recorded at its end: not promoted: metric.acc 0.45 >= champion.acc 0.5" in out.stdout
    verdict = _json(gp, "gate", better)
    assert verdict["passed"] and verdict["champion"] == first and verdict["run"] == better
    assert verdict["verdict"] == "gate passed: all 2 rules passed"
    assert _json(gp, "gate", worse, code=ExitCode.FAILED)["passed"] is False
    assert _json(gp, "champion", "train")["id"] == better

    # a rollback by hand
    record = _json(gp, "promote", first)
    assert (record["by"], record["run"], record["previous"]) == ("manual", first, better)
    assert _json(gp, "champion", "train")["id"] == first
    out = ctui(gp.root, "promote", first)
    assert out.returncode == 0 and "already is the champion" in out.stdout

    champ = _json(gp, "champion", "train", "--history")
    assert [(p["by"], p["previous"], p["run"]) for p in champ["history"]] == [
        ("gate", None, first),
        ("gate", first, better),
        ("manual", better, first),
    ]
    assert champ["history"][1]["reason"] == "promoted: all 2 rules passed"
    out = ctui(gp.root, "champion", "train", "--history")
    assert out.returncode == 0, out.stderr
    assert f"train: champion {first}" in out.stdout
    for line in (f"(none) → {first}", f"{first} → {better}", f"{better} → {first}"):
        assert line in out.stdout, out.stdout
    assert out.stdout.index(f"(none) → {first}") < out.stdout.index(f"{better} → {first}")

    every = _json(gp, "champion")
    assert [(r["job"], r["id"]) for r in every] == [("train", first)]
    assert worse not in {p["run"] for p in champ["history"]}


def test_no_champion_and_a_failing_absolute_rule_is_not_promoted(gp):
    write_config(gp.root, _config('["metric.acc >= champion.acc", "metric.loss < 0.2"]'))
    run_id, gate = _train(gp, 0.5)
    assert not gate["passed"] and not gate["promoted"]
    assert gate["verdict"] == "not promoted: metric.loss 0.5 < 0.2 failed"
    assert gate["rules"][0]["detail"] == "skipped: no champion yet"
    assert _json(gp, "champion", "train")["id"] is None
    out = ctui(gp.root, "champion", "train")
    assert out.returncode == 0 and "train: no champion" in out.stdout
    out = ctui(gp.root, "gate", run_id)
    assert out.returncode == ExitCode.FAILED
    assert "gate failed: metric.loss 0.5 < 0.2 failed" in out.stdout


@pytest.mark.parametrize(
    ("rules", "words"),
    [
        ('["metric.acc >= champion.acc", "metric.acc >>= 1"]', ["rule 2", "metric.acc >>= 1"]),
        ('["accuracy > 0.9"]', ["'accuracy > 0.9'", "unknown field 'accuracy'"]),
    ],
)
def test_a_bad_rule_exits_2_naming_it_and_launches_nothing(gp, rules, words):
    write_config(gp.root, _config(rules))
    for args in (("run", "train"), ("champion", "train"), ("run", "sleepy")):
        out = ctui(gp.root, *args)
        one_line_error(out, ExitCode.BAD_INPUT, "ctui.toml", "jobs.train.gate.rules", *words)
    assert Store(gp.store_file).runs() == []
    assert not gp.runs_dir.exists() or not any(gp.runs_dir.iterdir())


def test_promote_refuses_a_run_that_did_not_succeed(gp):
    failed = _launch(gp, "fail")
    wait_for(lambda: run_doc(gp, failed)["status"] == "failed", timeout=60)
    out = ctui(gp.root, "promote", failed)
    one_line_error(out, ExitCode.BAD_INPUT, failed, "is failed", "only a succeeded run")
    running = _launch(gp, "sleepy")
    wait_for(lambda: (gp.run_dir(running) / "output.log").exists(), timeout=60)
    try:
        out = ctui(gp.root, "promote", running)
        one_line_error(out, ExitCode.BAD_INPUT, "only a succeeded run")
    finally:
        ctui(gp.root, "stop", running)
    one_line_error(ctui(gp.root, "promote", "nosuchrun"), ExitCode.BAD_INPUT, "nosuchrun")
    one_line_error(ctui(gp.root, "gate", "nosuchrun"), ExitCode.BAD_INPUT, "nosuchrun")
    one_line_error(ctui(gp.root, "gate", failed), ExitCode.BAD_INPUT, "'fail' has no gate")
    one_line_error(ctui(gp.root, "champion", "nojob"), ExitCode.BAD_INPUT, "unknown job 'nojob'")
    assert _json(gp, "champion", "train", "--history")["history"] == []


def test_a_failed_on_promote_rolls_back_when_asked(gp):
    hook = f"on_promote = \"{PY} -c 'raise SystemExit(3)' {{run_id}}\""
    write_config(gp.root, _config(gate_extra=f'{hook}\non_promote_failure = "rollback"'))
    first, gate = _train(gp, 0.5)  # nothing to roll back to: it stays champion
    assert gate["promoted"]
    better, gate = _train(gp, 0.7)
    assert gate["promoted"]  # promoted, then put back when on_promote failed

    def rolled_back() -> list[dict[str, Any]] | None:
        past = _json(gp, "champion", "train", "--history")["history"]
        return past if len(past) == 3 else None

    past = wait_for(rolled_back, timeout=60)
    assert [(p["by"], p["previous"], p["run"]) for p in past] == [
        ("gate", None, first),
        ("gate", first, better),
        ("rollback", better, first),
    ]
    assert past[1]["on_promote"]["ok"] is False and past[1]["rolled_back"] == past[2]["id"]
    assert past[2]["reason"].startswith(f"on_promote of {better} failed")
    assert _json(gp, "champion", "train")["id"] == first
    out = ctui(gp.root, "promote", better)
    assert out.returncode == ExitCode.FAILED, out.stderr
    assert "on_promote: FAILED" in out.stdout and f"the champion is {first} again" in out.stdout
    assert _json(gp, "champion", "train")["id"] == first


def test_a_rejected_triggered_run_notifies(gp):
    notes = gp.root / "notes.txt"
    (gp.root / "note.py").write_text(
        "import sys\n"
        "with open(sys.argv[1], 'a') as f:\n"
        "    f.write(' '.join(sys.argv[2:]) + '\\n')\n"
    )
    extra = f"""
[triggers.nightly]
job = "train"
on = "schedule"
every = "1d"

[notify]
command = "{PY} note.py {notes} {{event}} {{run_id}} {{champion}}"
"""
    write_config(gp.root, _config(extra=extra))
    first, gate = _train(gp, 0.5)
    assert gate["promoted"]
    wait_for(lambda: notes.exists() and f"promoted {first}" in notes.read_text(), timeout=60)
    worse, gate = _train(gp, 0.2)  # by hand: rejected, but nobody is paged for it
    assert not gate["passed"]
    fired = _json(gp, "triggers", "fire", "nightly")
    triggered = fired["run_id"]
    gate = _gated(gp, triggered)  # the job's default acc = 0.3: worse than the champion
    assert not gate["passed"]
    lines = wait_for(
        lambda: [ln for ln in notes.read_text().splitlines() if ln.startswith("rejected")],
        timeout=60,
    )
    assert lines == [f"rejected {triggered} {first}"]
    assert worse not in notes.read_text()


def test_champion_of_every_job_before_any_promotion(gp):
    assert _json(gp, "champion") == [
        {
            "gate": ["metric.acc >= champion.acc - 0.005", "metric.loss < 0.6"],
            "id": None,
            "job": "train",
            "promotion": None,
            "since": None,
        }
    ]
    out = ctui(gp.root, "champion")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:6] == ["job", "champion", "since", "by", "train", "—"]
