# ruff: noqa: F811  (fixtures are imported from tests.dvc_pipeline and test_tui_fixtures)
"""DVC plots → curves in the run folder (checked against `dvc plots show` itself), shown on
the run detail's metrics tab; the experiment a `dvc exp run` job made; bad DVC input reported
in words while the run still ends. Real dvc, the real pipeline of tests/dvc_pipeline.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from jobs_helpers import wait_final
from test_tui_fixtures import FROZEN_NOW, tui_project  # noqa: F401

from ctui.integrations.dvc_plots import (
    MAX_POINTS,
    PLOTS_FILE,
    declared_plots,
    read_plots,
    record_end,
)
from ctui.jobs.launch import launch_run
from ctui.project import Project
from ctui.tui.app import CtuiApp
from tests.conftest import git
from tests.dvc_pipeline import dvc, pipeline, pipeline_template, set_param  # noqa: F401

pytestmark = pytest.mark.timeout(240)

PLOTS_YAML = """\
plots:
  - eval/roc.json:
      x: fpr
      y: tpr
  - eval/loss.csv
  - precision:
      x: recall
      y:
        eval/prc.tsv: precision
  - eval/curves
stages:
  train:
    cmd: python train.py
    plots:
      - eval/steps.yaml:
          x: step
          y: loss
"""

FILES = {
    "eval/roc.json": '{"roc": [{"fpr": 0, "tpr": 0}, {"fpr": 0.5, "tpr": 0.8}, '
    '{"fpr": 1, "tpr": 1}]}',
    "eval/loss.csv": "epoch,loss,lr\n0,2.5,0.1\n1,1.5,0.1\n2,0.9,0.05\n",
    "eval/prc.tsv": "recall\tprecision\tthreshold\n0.1\t0.9\t0.8\n0.5\t0.7\t0.5\n0.9\t0.4\t0.2\n",
    "eval/steps.yaml": "- {step: 0, loss: 1.0, acc: 0.5}\n- {step: 1, loss: 0.5, acc: 0.7}\n",
    "eval/curves/one.json": '[{"a": 1, "b": 2}, {"a": 2, "b": 3}]',
}


def _dvc_env() -> dict[str, str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_every_plot_form_dvc_accepts_reads_as_dvc_reads_it(tmp_path: Path) -> None:
    """Top-level file plots (with and without x/y), a plot id over a TSV's fields, a folder,
    a stage's plots out; JSON `{key: [records]}`, CSV, TSV, YAML. DVC's defaults (x: the
    index, y: the last field) as `dvc plots show --json` picks them."""
    (tmp_path / "dvc.yaml").write_text(PLOTS_YAML)
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    curves, problems = read_plots(tmp_path)
    assert problems == []
    ours = {(c["file"], c["name"]): c for c in curves}
    assert set(ours) == {
        ("eval/roc.json", "roc"),
        ("eval/loss.csv", "loss"),
        ("eval/prc.tsv", "precision"),
        ("eval/curves/one.json", "one"),
        ("eval/steps.yaml", "steps"),
    }
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q", "--no-scm"], cwd=tmp_path,
                   env=_dvc_env(), check=True)  # fmt: skip
    shown = subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "show", "--json"], cwd=tmp_path,
        env=_dvc_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    theirs = json.loads(shown.stdout)["data"]
    for (file, name), curve in ours.items():
        content = (theirs.get(file) or theirs[name])[0]["content"]
        x = content["encoding"]["x"]["field"]
        y = content["layer"][0]["encoding"]["y"]["field"]
        assert (curve["x"], curve["y"]) == (x, y), file
        values = content["data"]["values"]
        assert curve["points"] == [[float(v[x]), float(v[y])] for v in values], file


def test_a_mapping_of_plot_ids_and_long_curves(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text(
        "plots:\n  roc:\n    x: fpr\n    y:\n      eval/roc.csv: [tpr, tnr]\n"
    )
    (tmp_path / "eval").mkdir()
    rows = "\n".join(f"{i / 9999},{i / 9999},{1 - i / 9999}" for i in range(10_000))
    (tmp_path / "eval" / "roc.csv").write_text("fpr,tpr,tnr\n" + rows + "\n")
    [plot] = declared_plots(tmp_path)
    assert (plot.name, plot.file, plot.x, plot.y) == ("roc", "eval/roc.csv", "fpr", ("tpr", "tnr"))
    curves, problems = read_plots(tmp_path)
    assert problems == [] and [c["y"] for c in curves] == ["tpr", "tnr"]
    points = curves[0]["points"]
    assert len(points) == MAX_POINTS
    assert points[0] == [0.0, 0.0] and points[-1] == [1.0, 1.0]  # both ends kept


def run_job(project: Any, job: str = "pipeline", status: str = "succeeded") -> dict[str, Any]:
    run = wait_final(project, launch_run(project, job)["id"], timeout=120)
    log = (project.run_dir(run["id"]) / "output.log").read_text()
    assert run["status"] == status, log
    return run


async def test_the_roc_plot_is_stored_and_shown(pipeline: Any) -> None:
    set_param(pipeline.root, "train", "seed", 5)  # evaluate runs again
    run = run_job(pipeline)
    stored = orjson.loads((pipeline.run_dir(run["id"]) / PLOTS_FILE).read_bytes())
    roc = json.loads((pipeline.root / "eval/plots/roc.json").read_text())["roc"]
    assert stored == [
        {
            "name": "roc",
            "file": "eval/plots/roc.json",
            "x": "fpr",
            "y": "tpr",
            "points": [[r["fpr"], r["tpr"]] for r in roc],
        }
    ]
    assert "dvc_error" not in run
    from textual.widgets import TabbedContent

    from ctui.tui.screens.run_detail import RunDetailScreen
    from ctui.tui.widgets.chart_browser import ChartBrowser

    app = CtuiApp(pipeline, poll_interval=1000, keymap={})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.push_screen(RunDetailScreen(pipeline, run["id"]))
        await pilot.pause()
        await pilot.press("2")
        screen = app.screen
        assert screen.query_one(TabbedContent).active == "metrics"
        deadline = time.monotonic() + 15
        browser = screen.query_one("#metrics-charts", ChartBrowser)
        while not browser.charts and time.monotonic() < deadline:
            await pilot.pause(0.05)
        chart = browser.charts[-1]
        (line,) = chart.series
        assert line.values[0] == pytest.approx(roc[0]["tpr"])
        assert line.values[-1] == pytest.approx(roc[-1]["tpr"])
        assert line.steps[0] == pytest.approx(roc[0]["fpr"])
        assert chart.name.startswith("roc  tpr vs fpr") and chart.x_label == "fpr"
        assert chart.note == "eval/plots/roc.json, 5 points"


def test_a_plot_on_the_metrics_tab_at_80x24(
    snap_compare: Any, tui_project: Project, pipeline_template: Path
) -> None:
    """The fixture pipeline's ROC curve as a DVC run has it: no metric history, final
    metrics, the plot under them."""
    curves, problems = read_plots(pipeline_template)
    assert problems == [] and curves
    for folder in tui_project.runs_dir.iterdir():
        (folder / "metrics.jsonl").unlink(missing_ok=True)
        (folder / PLOTS_FILE).write_bytes(orjson.dumps(curves))

    async def open_metrics(pilot: Any) -> None:
        await pilot.press("down", "down", "down", "enter")
        deadline = time.monotonic() + 15
        while not pilot.app.screen.query_one("#metrics-charts").charts and (
            time.monotonic() < deadline
        ):
            await pilot.pause(0.05)
        await pilot.press("2")
        await pilot.pause()

    app = CtuiApp(tui_project, clock=lambda: FROZEN_NOW, poll_interval=1000, keymap={})
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_metrics)


# -- dvc exp run ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    ["dvc exp run -S train.n_est=60", "dvc exp run -q -n tuned -S train.n_est=60"],
    ids=["named-by-dvc", "quiet"],
)
def test_a_dvc_exp_run_job_records_its_experiment(pipeline: Any, command: str) -> None:
    root = pipeline.root
    with (root / "ctui.toml").open("a") as fh:
        fh.write(f'\n[jobs.exp]\ncommand = "{command}"\n')
    run = run_job(pipeline, "exp")
    exp = run["dvc_exp"]
    refs = git(root, "for-each-ref", "--format=%(refname)", "refs/exps/").split()
    assert exp["ref"] in refs and exp["ref"].endswith("/" + exp["name"])
    if "-n tuned" in command:
        assert exp["name"] == "tuned"
    else:
        log = (pipeline.run_dir(run["id"]) / "output.log").read_text()
        assert f"Ran experiment(s): {exp['name']}" in log
        assert exp["applied"] is True
    # the -S value: the run's params (read from params.yaml after the job) and its metrics
    assert run["params"]["train.n_est"] == 60
    assert run["metrics"]["avg_prec.test"] > 0
    # a `dvc repro` job records no experiment
    plain = run_job(pipeline)
    assert "dvc_exp" not in plain


# -- bad input --------------------------------------------------------------------------------


def supervisor_log(project: Any, run: dict[str, Any]) -> str:
    return (project.run_dir(run["id"]) / "supervisor.log").read_text()


def test_a_broken_dvc_yaml_is_reported_and_the_run_ends(pipeline: Any) -> None:
    (pipeline.root / "dvc.yaml").write_text("stages:\n  train: [unclosed\n")
    run = run_job(pipeline, status="failed")  # dvc itself refuses it
    assert run["dvc_error"].startswith("dvc.yaml is not valid YAML")
    assert run["metrics"] == {}
    log = supervisor_log(pipeline, run)
    assert "dvc.yaml is not valid YAML" in log and "Traceback" not in log


def test_a_plots_file_that_is_not_data_is_reported_and_the_run_ends(pipeline: Any) -> None:
    evaluate = pipeline.root / "src" / "evaluate.py"
    text = evaluate.read_text()
    evaluate.write_text(text + 'open("eval/plots/roc.json", "w").write("fpr tpr, not JSON")\n')
    run = run_job(pipeline)
    assert run["dvc_error"].startswith("plot eval/plots/roc.json: not valid JSON")
    assert run["metrics"]["avg_prec.test"] > 0  # the metrics are still the run's
    assert not (pipeline.run_dir(run["id"]) / PLOTS_FILE).exists()
    log = supervisor_log(pipeline, run)
    assert "plot eval/plots/roc.json: not valid JSON" in log and "Traceback" not in log


def test_record_end_never_raises(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text("plots:\n  - eval/roc.txt\n  - eval/gone.json\n")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "roc.txt").write_text("fpr tpr\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    fields = record_end(tmp_path, run_dir, ["dvc", "exp", "run"], since=None)
    assert fields == {"dvc_error": "plot eval/roc.txt: not a JSON, YAML, CSV or TSV file"}
    assert record_end(tmp_path / "nowhere", run_dir) == {}
