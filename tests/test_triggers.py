"""Trigger kinds end to end on real git + DVC repos: each reason to retrain launches one run."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ctui.config import load_config
from ctui.errors import ConfigError
from ctui.store import CAUSES, TRIGGERS, Store
from ctui.triggers.launching import fire_manually
from ctui.triggers.listing import list_triggers, set_trigger_enabled
from ctui.triggers.schedule import slots
from ctui.triggers.validate import validate_all
from ctui.triggers.watch import run_cycle
from tests.test_triggers_helpers import (
    PY,
    QUICK,
    change_data,
    ctui,
    git,
    init_dvc,
    runs,
    track,
    wait_final,
    write_config,
)

pytestmark = pytest.mark.timeout(120)


def cycle(project, now: float | None = None):
    return run_cycle(project, now=now, housekeeping=False)


def test_data_trigger_one_run_per_data_change(project) -> None:
    root = project.root
    init_dvc(root)
    write_config(
        root,
        f"""
[jobs.train]
command = "{QUICK}"
params = {{ data = "none" }}

[triggers.new-data]
job = "train"
on = "data"
params = {{ data = "{{data_hash}}" }}
""",
    )
    # the job never ran on this data → it fires
    out = ctui(root, "watch", "--once")
    assert out.returncode == 0, out.stderr
    first = runs(root)
    assert len(first) == 1
    wait_final(root)  # the manifest is captured as the job starts
    run = runs(root)[0]
    assert run["trigger"] == "new-data"
    assert run["cause"].startswith("never ran on this data")
    assert run["cause_key"] == f"data:new-data:{run['manifest']['data']}"
    assert run["params"] == {"data": run["manifest"]["data"][:12]}

    # unchanged data → nothing, however often it is asked
    again = ctui(root, "watch", "--once", "--json")
    assert again.returncode == 0, again.stderr
    import orjson

    cycle_doc = orjson.loads(again.stdout)
    assert cycle_doc["launched"] == [] and cycle_doc["events"] == []
    assert [(t["trigger"], t["status"]) for t in cycle_doc["triggers"]] == [("new-data", "idle")]
    assert len(runs(root)) == 1

    # new data → exactly one more, with the change as its cause
    change_data(root, "3,4")
    assert ctui(root, "watch", "--once").returncode == 0
    assert ctui(root, "watch", "--once").returncode == 0
    after = wait_final(root)
    assert len(after) == 2
    assert after[1]["cause"].startswith("data/train.csv ")
    assert "→" in after[1]["cause"]
    assert after[1]["manifest"]["data"] != after[0]["manifest"]["data"]

    listed = ctui(root, "triggers", "--json")
    assert listed.returncode == 0
    (row,) = orjson.loads(listed.stdout)
    assert row["name"] == "new-data" and row["enabled"] is True
    assert row["last_cause"] == after[1]["cause"] and row["last_run"] == after[1]["id"]


def test_data_trigger_waits_for_a_file_still_being_written(project) -> None:
    root = project.root
    track(root, "data/train.csv", "x,y\n")
    (root / "data" / "extra.csv").write_text("half a data")
    write_config(
        root,
        f"""
[jobs.train]
command = "{QUICK}"
data = ["data/extra.csv"]

[triggers.new-data]
job = "train"
on = "data"
debounce = "1h"
""",
    )
    res = cycle(project)
    assert [e.status for e in res.evaluations] == ["wait"]
    assert "data/extra.csv changed" in res.evaluations[0].note
    assert runs(root) == []
    # settled (last written two hours ago) → fires
    old = time.time() - 7200
    os.utime(root / "data" / "extra.csv", (old, old))
    res = cycle(project)
    assert len(res.launched) == 1
    wait_final(root)


def test_data_trigger_paths_narrow_what_counts(project) -> None:
    root = project.root
    track(root, "data/train.csv", "x,y\n")
    (root / "other.txt").write_text("a")
    git(root, "add", "other.txt")
    write_config(
        root,
        f"""
[jobs.train]
command = "{QUICK}"
data = ["other.txt"]

[triggers.train-data]
job = "train"
on = "data"
paths = ["data"]
debounce = 0
""",
    )
    assert len(cycle(project).launched) == 1
    wait_final(root)
    (root / "other.txt").write_text("b")  # changes the job's data, but not under data/
    res = cycle(project)
    assert res.launched == [] and res.evaluations[0].status == "idle"
    track(root, "data/train.csv", "x,y\n5,6\n")
    assert len(cycle(project).launched) == 1
    wait_final(root)


LOCK = """schema: '2.0'
stages:
  train:
    cmd: python train.py
    deps:
    - path: data/train.csv
      md5: {data}
      size: 10
    outs:
    - path: model.pkl
      md5: {model}
      size: 20
"""


def test_stage_outputs_written_by_the_job_do_not_retrigger_it(project) -> None:
    """A job that runs `dvc repro` rewrites its outputs' hashes in dvc.lock; that is not new
    data, or every run would start the next one."""
    root = project.root
    (root / "dvc.lock").write_text(LOCK.format(data="a" * 32, model="0" * 32))
    (root / "bump.py").write_text(
        "import pathlib, uuid\n"
        "p = pathlib.Path('dvc.lock')\n"
        "lines = p.read_text().splitlines()\n"
        "lines[-2] = '      md5: ' + uuid.uuid4().hex\n"
        "p.write_text('\\n'.join(lines) + '\\n')\n"
    )
    write_config(
        root,
        f"""
[jobs.train]
command = "{PY} bump.py"

[triggers.new-data]
job = "train"
on = "data"

[triggers.with-outs]
job = "train"
on = "data"
outs = true
enabled = false
""",
    )
    assert len(cycle(project).launched) == 1
    (run,) = wait_final(root)
    assert run["status"] == "succeeded"
    assert "0" * 32 not in (root / "dvc.lock").read_text()  # the job wrote a new model hash
    res = cycle(project)
    assert res.launched == [] and res.evaluations[0].status == "idle"
    # new input data → fires, and the cause names the input, not the model
    (root / "dvc.lock").write_text((root / "dvc.lock").read_text().replace("a" * 32, "b" * 32))
    res = cycle(project)
    assert len(res.launched) == 1
    assert res.events[0]["cause"] == "data/train.csv aaaa…→bbbb…"
    wait_final(root)
    # with outs = true the model counts as data too; the run recorded the model it made
    # (outputs are captured when it ends), so only a model changed outside a run fires
    set_trigger_enabled(project, "with-outs", True)
    assert cycle(project).launched == []
    (root / "dvc.lock").write_text(LOCK.format(data="b" * 32, model="f" * 32))
    res = cycle(project)
    assert len(res.launched) == 1 and "model.pkl" in res.events[0]["cause"]
    wait_final(root)


def test_code_trigger_fires_on_new_commit_touching_paths(project) -> None:
    root = project.root
    (root / "src").mkdir()
    (root / "src" / "model.py").write_text("A = 1\n")
    write_config(
        root,
        f"""
[jobs.train]
command = "{QUICK}"
params = {{ rev = "" }}

[triggers.new-code]
job = "train"
on = "code"
branch = "main"
paths = ["src"]
params = {{ rev = "{{commit}}" }}
""",
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "model")
    res = cycle(project)  # first look: baseline only
    assert res.launched == [] and "watching main from" in res.evaluations[0].note

    (root / "README.md").write_text("docs only\n")
    git(root, "commit", "-qam", "docs")
    res = cycle(project)
    assert res.launched == [] and "touches none of src" in res.evaluations[0].note

    (root / "src" / "model.py").write_text("A = 2\n")
    git(root, "commit", "-qam", "better model")
    head = git(root, "rev-parse", "HEAD")
    res = cycle(project)
    assert len(res.launched) == 1
    (run,) = runs(root)
    assert run["cause_key"] == f"code:new-code:{head}"
    assert run["params"] == {"rev": head}
    assert "better model" in run["cause"]
    assert cycle(project).launched == []
    wait_final(root)


def test_after_chain_one_run_per_upstream_success(project) -> None:
    root = project.root
    write_config(
        root,
        f"""
[jobs.train]
command = "{QUICK}"

[jobs.evaluate]
command = "{QUICK}"
params = {{ model = "" }}

[triggers.eval-after-train]
job = "evaluate"
on = "after"
after = "train"
params = {{ model = "{{upstream_run}}" }}
""",
    )
    assert cycle(project).launched == []  # nothing upstream yet
    first = fire_manually(project, "eval-after-train")  # by hand: evaluate runs, no train
    assert first["event"] == "fired"
    wait_final(root)

    from ctui.jobs.launch import launch_run

    t1 = launch_run(project, "train")
    t2 = launch_run(project, "train")
    wait_final(root)
    res = cycle(project)
    assert len(res.launched) == 2
    wait_final(root)
    evaluated = [r for r in runs(root) if r.get("cause_key", "").startswith("after:")]
    assert sorted(r["params"]["model"] for r in evaluated) == sorted([t1["id"], t2["id"]])
    assert {r["cause_key"] for r in evaluated} == {
        f"after:eval-after-train:{t1['id']}",
        f"after:eval-after-train:{t2['id']}",
    }
    assert cycle(project).launched == []


def test_metric_trigger_fires_once_per_crossing(project) -> None:
    root = project.root
    (root / "score.txt").write_text("0.1\n")
    (root / "drift.py").write_text(
        "import pathlib\nprint('drift score:', pathlib.Path('score.txt').read_text().strip())\n"
    )
    write_config(
        root,
        f"""
[jobs.train]
command = "{QUICK}"
params = {{ why = "" }}

[triggers.drift]
job = "train"
on = "metric"
command = "{PY} drift.py"
threshold = 0.5
params = {{ why = "drift {{value}}" }}
""",
    )
    assert cycle(project).launched == []
    (root / "score.txt").write_text("0.9\n")
    assert len(cycle(project).launched) == 1
    assert cycle(project).launched == []  # still above: same crossing
    (root / "score.txt").write_text("0.2\n")
    assert cycle(project).launched == []  # re-armed
    (root / "score.txt").write_text("0.8\n")
    assert len(cycle(project).launched) == 1
    done = wait_final(root)
    assert [r["cause_key"] for r in done] == ["metric:drift:1", "metric:drift:2"]
    assert [r["params"]["why"] for r in done] == ["drift 0.9", "drift 0.8"]

    (root / "drift.py").write_text("print('no number today')\n")
    res = cycle(project)
    assert res.evaluations[0].status == "error" and "gave no number" in res.evaluations[0].note


def test_schedule_trigger_with_injected_clock(project) -> None:
    root = project.root
    write_config(
        root,
        f"""
[jobs.train]
command = "{QUICK}"

[triggers.hourly]
job = "train"
on = "schedule"
every = "1h"
""",
    )
    t0 = 1_800_000_000.0 + 600  # 10 minutes into an hour slot
    res = cycle(project, now=t0)
    assert res.launched == [] and res.evaluations[0].next_check == 1_800_000_000.0 + 3600
    assert cycle(project, now=t0 + 1200).launched == []  # same slot
    res = cycle(project, now=t0 + 3000)  # next slot
    assert len(res.launched) == 1
    assert cycle(project, now=t0 + 3100).launched == []
    assert len(cycle(project, now=t0 + 3 * 3600).launched) == 1  # missed slots: one run
    done = wait_final(root)
    assert [r["cause_key"] for r in done] == [
        f"schedule:hourly:{int(1_800_000_000 + 3600)}",
        f"schedule:hourly:{int(1_800_000_000 + 3 * 3600)}",
    ]


def test_cron_slots() -> None:
    from ctui.config import TriggerConfig

    tc = TriggerConfig("nightly", "train", "schedule", options={"cron": "*/15 * * * *"})
    base = 1_800_000_000.0  # a multiple of 15 minutes
    assert slots(tc, base) == (base, base + 900)
    assert slots(tc, base + 1) == (base, base + 900)
    assert slots(tc, base + 899.5) == (base, base + 900)


def test_cooldown_and_enable_disable(project) -> None:
    root = project.root
    track(root, "data/train.csv", "x,y\n")
    write_config(
        root,
        f"""
[jobs.train]
command = "{QUICK}"

[triggers.new-data]
job = "train"
on = "data"
cooldown = "1h"
""",
    )
    assert len(cycle(project).launched) == 1
    wait_final(root)
    track(root, "data/train.csv", "x,y\n7,8\n")
    res = cycle(project)
    assert res.launched == [] and res.evaluations[0].status == "cooldown"
    assert len(cycle(project, now=time.time() + 3601).launched) == 1
    wait_final(root)

    track(root, "data/train.csv", "x,y\n9,9\n")
    row = set_trigger_enabled(project, "new-data", False)
    assert row["enabled"] is False and row["overridden"] is True
    res = cycle(project, now=time.time() + 7300)
    assert res.launched == [] and res.evaluations[0].status == "disabled"
    assert Store(project.store_file).get_doc(TRIGGERS, "new-data")["enabled"] is False
    set_trigger_enabled(project, "new-data", True)
    assert Store(project.store_file).get_doc(TRIGGERS, "new-data")["enabled"] is None
    assert len(cycle(project, now=time.time() + 7300).launched) == 1
    done = wait_final(root)
    (row,) = list_triggers(project)
    assert row["enabled"] is True and row["overridden"] is False
    assert row["last_run"] == done[-1]["id"] and row["last_cause"] == done[-1]["cause"]


def test_two_causes_in_one_cycle_respect_max_concurrent(project) -> None:
    root = project.root
    track(root, "data/train.csv", "x,y\n")
    write_config(
        root,
        f"""
[jobs.train]
command = "{PY} -c 'import time; time.sleep(1)'"
max_concurrent = 1

[triggers.a]
job = "train"
on = "data"

[triggers.b]
job = "train"
on = "data"
paths = "data/train.csv"
""",
    )
    res = cycle(project)
    assert len(res.launched) == 2
    statuses = sorted(r["status"] for r in runs(root))
    assert statuses == ["queued", "running"]
    from ctui.jobs.reconcile import refresh

    deadline = time.monotonic() + 30
    while any(r["status"] in ("queued", "running") for r in runs(root)):
        refresh(project)
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert [r["status"] for r in runs(root)] == ["succeeded", "succeeded"]


def test_cli_fire_enable_disable_and_listing(project) -> None:
    root = project.root
    write_config(
        root,
        f"""
[jobs.train]
command = "{QUICK}"

[triggers.nightly]
job = "train"
on = "schedule"
cron = "0 3 * * *"
enabled = false
""",
    )
    out = ctui(root, "triggers", env={"COLUMNS": "200"})
    assert out.returncode == 0 and "nightly" in out.stdout and "cron 0 3 * * *" in out.stdout
    fired = ctui(root, "triggers", "fire", "nightly")
    assert fired.returncode == 0, fired.stderr
    (run,) = runs(root)
    assert run["trigger"] == "nightly" and run["cause"].startswith("manual ")
    assert run["cause_key"].startswith("manual:nightly:")
    causes = Store(project.store_file).docs(CAUSES)
    assert causes[run["cause_key"]]["state"] == "launched"
    assert causes[run["cause_key"]]["run_id"] == run["id"]

    assert ctui(root, "triggers", "enable", "nightly").returncode == 0
    import orjson

    (row,) = orjson.loads(ctui(root, "triggers", "--json").stdout)
    assert row["enabled"] is True and row["next_check"] is not None
    assert row["last_run"] == run["id"]
    bad = ctui(root, "triggers", "fire", "nope")
    assert bad.returncode == 2 and "no such trigger" in bad.stderr
    wait_final(root)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('on = "schedule"\ncron = "61 * * * *"', "triggers.t.cron"),
        ('on = "schedule"', "exactly one of every"),
        ('on = "data"\nbranch = "main"', "unknown key(s) branch"),
        ('on = "metric"\nfile = "x"', "triggers.t.threshold"),
        ('on = "metric"\nfile = "x"\nthreshold = 1\ndirection = "up"', "above or below"),
        ('on = "after"\nafter = "nope"', "triggers.t.after"),
        ('on = "code"\nparams = { lr = "{commit}" }', "has no param 'lr'"),
        ('on = "code"\nparams = { rev = "{data_hash}" }', "unknown placeholder {data_hash}"),
    ],
)
def test_validation_names_file_and_key(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "ctui.toml").write_text(
        f'[jobs.train]\ncommand = "true"\nparams = {{ rev = "" }}\n\n'
        f'[triggers.t]\njob = "train"\n{table}\n'
    )
    with pytest.raises(ConfigError) as err:
        validate_all(load_config(tmp_path))
    assert message in str(err.value) and "ctui.toml" in str(err.value)
