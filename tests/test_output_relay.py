"""Real jobs through the real `ctui run`: their output relayed into output.log unchanged, when
and from which stream in output.idx, the metrics they print read into output_metrics.jsonl and,
for a run with none of its own, into its final metrics."""

from __future__ import annotations

import os
import signal
from typing import Any

import orjson
import pytest
from cli_helpers import ctui
from jobs_helpers import PY, run_doc, wait_final, wait_for, write_config

pytestmark = pytest.mark.timeout(120)

HF = """
for step in range(1, 4):
    print({'loss': round(1 / step, 3), 'learning_rate': round(4e-05 * step, 6), 'epoch': step / 2})
print({'train_runtime': 1.5, 'epoch': 1.5})
"""

KV = """
import sys
print("2024-01-02 12:30:45,123 - INFO - starting, version 1.2.3 on port: 8080")
for epoch in range(3):
    print(f"Epoch {epoch}")
    print(f"train loss={1 / (epoch + 1):.3f}, acc={0.5 + epoch / 10:.2f}", flush=True)
sys.exit(0)
"""

OWN = """
print("Epoch 1")
print("val_acc=0.91 loss=0.3")
print("Epoch 2")
print("val_acc=0.95 loss=0.2")
print("val_acc=n/a")
"""

WAITER = """
import os, sys, time
log = os.path.join(os.environ["CTUI_RUN_DIR"], "output.log")

def shown(text):  # until the supervisor has relayed it (the streams' order is then certain)
    while text.encode() not in open(log, "rb").read():
        time.sleep(0.01)

def say(stream, text):
    stream.write(text)
    stream.flush()
    shown(text)

say(sys.stdout, "out one loss=0.5\\n")
say(sys.stderr, "err one\\n")
say(sys.stdout, "out two acc=0.7\\n")
time.sleep(60)  # until the test stops it
"""

TRACKED = """
from ctui import track
track.log_metric("loss", 0.1, step=1)
print("loss=9.9 extra=1.5")
"""

BYTES = """
import sys
sys.stdout.buffer.write(b"bad \\xff\\xfe bytes loss=0.5\\r\\nplain \\xc3\\xa9 acc=0.7")
"""

GRANDCHILD = """
import subprocess, sys
subprocess.Popen(["sleep", "60"])  # inherits stdout and stderr, outlives the job
print("loss=0.5", flush=True)
"""

TQDM = """
from tqdm import tqdm
for epoch in range(2):
    bar = tqdm(range(50), desc=f"epoch {epoch}", mininterval=0)
    for i in bar:
        bar.set_postfix(loss=round(1 / (epoch + 1) - i / 1000, 3))
    bar.close()
    print(f"Epoch {epoch} done: val_acc={0.8 + epoch / 10:.2f}", flush=True)
"""

SCRIPTS = {
    "tq.py": TQDM,
    "hf.py": HF,
    "kv.py": KV,
    "own.py": OWN,
    "waiter.py": WAITER,
    "tracked.py": TRACKED,
    "bytes.py": BYTES,
    "grandchild.py": GRANDCHILD,
}

CONFIG = f"""
[jobs.hf]
command = "{PY} hf.py"

[jobs.kv]
command = "{PY} kv.py"

[jobs.own]
command = "{PY} own.py"
output_metrics = ['val_acc=(?P<value>\\S+)']

[jobs.off]
command = "{PY} kv.py"
output_metrics = false

[jobs.waiter]
command = "{PY} waiter.py"

[jobs.tracked]
command = "{PY} tracked.py"

[jobs.bytes]
command = "{PY} bytes.py"

[jobs.tq]
command = "{PY} tq.py"

[jobs.grandchild]
command = "{PY} grandchild.py"
"""


@pytest.fixture
def jp(project):
    write_config(project.root, CONFIG)
    for name, text in SCRIPTS.items():
        (project.root / name).write_text(text)
    return project


def run(jp: Any, job: str) -> str:
    out = ctui(jp.root, "run", job, "--json")
    assert out.returncode == 0, out.stderr
    run_id: str = orjson.loads(out.stdout)["id"]
    return run_id


def points(jp: Any, run_id: str) -> list[tuple[str, Any, Any]]:
    path = jp.run_dir(run_id) / "output_metrics.jsonl"
    recs = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert all(r["src"] == "output" and r["time"] > 1e9 for r in recs)
    return [(r["name"], r["value"], r["step"]) for r in recs]


def idx(jp: Any, run_id: str) -> list[tuple[int, float, str]]:
    lines = (jp.run_dir(run_id) / "output.idx").read_text().splitlines()
    recs = [(int(o), float(t), s) for o, t, s in (line.split() for line in lines)]
    offsets = [r[0] for r in recs]
    assert offsets == sorted(offsets) and offsets[0] == 0
    return recs


def test_hf_trainer_dicts_become_the_runs_metrics(jp):
    run_id = run(jp, "hf")
    doc = wait_final(jp, run_id)
    assert doc["status"] == "succeeded"
    assert points(jp, run_id) == [
        ("loss", 1.0, None),
        ("learning_rate", 4e-05, None),
        ("epoch", 0.5, None),
        ("loss", 0.5, None),
        ("learning_rate", 8e-05, None),
        ("epoch", 1.0, None),
        ("loss", 0.333, None),
        ("learning_rate", 0.00012, None),
        ("epoch", 1.5, None),
        ("train_runtime", 1.5, None),
        ("epoch", 1.5, None),
    ]
    assert doc["metrics"] == {
        "loss": 0.333,
        "learning_rate": 0.00012,
        "epoch": 1.5,
        "train_runtime": 1.5,
    }
    assert doc["metrics_from"] == "output"
    assert "output_metrics_ignored" not in doc
    shown = ctui(jp.root, "show", run_id).stdout
    assert "metrics from  the job's output (read from its log)" in shown
    assert "ignored" not in shown


def test_key_value_lines_with_epochs(jp):
    run_id = run(jp, "kv")
    doc = wait_final(jp, run_id)
    assert points(jp, run_id) == [
        ("loss", 1.0, 0),
        ("acc", 0.5, 0),
        ("loss", 0.5, 1),
        ("acc", 0.6, 1),
        ("loss", 0.333, 2),
        ("acc", 0.7, 2),
    ]
    assert doc["metrics"] == {"loss": 0.333, "acc": 0.7}
    assert doc["metrics_from"] == "output"
    # the log is the job's bytes, unchanged; stdout only
    log = (jp.run_dir(run_id) / "output.log").read_text()
    assert log.startswith("2024-01-02 12:30:45,123 - INFO") and log.endswith("acc=0.70\n")
    assert {s for _, _, s in idx(jp, run_id)} == {"o"}


def test_a_jobs_own_pattern_and_what_it_matched_that_was_no_number(jp):
    run_id = run(jp, "own")
    doc = wait_final(jp, run_id)
    assert points(jp, run_id) == [("val_acc", 0.91, 1), ("val_acc", 0.95, 2)]
    assert doc["metrics"] == {"val_acc": 0.95}  # loss=… is no pattern of this job
    assert doc["output_metrics_ignored"] == 1
    shown = ctui(jp.root, "show", run_id).stdout
    assert "1 match ignored (not a number)" in shown


def test_a_real_tqdm_bar_counts_in_its_final_state(jp):
    run_id = run(jp, "tq")
    doc = wait_final(jp, run_id)
    assert doc["status"] == "succeeded"
    # each bar's last state (`epoch 0: 100%|…| 50/50 […, loss=0.951]`, on stderr): its
    # postfix is a metric at the bar's epoch; its percentages, counts and rates are not
    # (how stdout and stderr interleave is as the relay read them: each in its own order)
    got = sorted(points(jp, run_id), key=lambda p: p[0])
    assert got == [("loss", 0.951, 0), ("loss", 0.451, 1), ("val_acc", 0.8, 0), ("val_acc", 0.9, 1)]
    assert doc["metrics"] == {"loss": 0.451, "val_acc": 0.9}
    assert {s for _, _, s in idx(jp, run_id)} == {"e", "o"}


def test_output_metrics_off(jp):
    run_id = run(jp, "off")
    doc = wait_final(jp, run_id)
    assert doc["status"] == "succeeded"
    assert not (jp.run_dir(run_id) / "output_metrics.jsonl").exists()
    assert not doc.get("metrics") and "metrics_from" not in doc
    assert "acc=0.70" in (jp.run_dir(run_id) / "output.log").read_text()


def test_streams_in_order_and_ctuis_own_note(jp):
    run_id = run(jp, "waiter")
    log = jp.run_dir(run_id) / "output.log"
    wait_for(lambda: b"out two" in log.read_bytes())
    assert ctui(jp.root, "stop", run_id).returncode == 0
    doc = wait_final(jp, run_id)
    assert doc["status"] == "cancelled"
    data = log.read_bytes()
    recs = idx(jp, run_id)
    assert [s for _, _, s in recs] == ["o", "e", "o", "c"]
    spans = [
        data[a:b]
        for (a, _, _), (b, _, _) in zip(recs, [*recs[1:], (len(data), 0, "")], strict=True)
    ]
    assert spans[:3] == [b"out one loss=0.5\n", b"err one\n", b"out two acc=0.7\n"]
    assert spans[3].startswith(b"[ctui] stop requested")
    times = [t for _, t, _ in recs]
    assert times == sorted(times) and abs(times[0] - doc["started"]) < 30
    # the metrics of both stdout lines, none from ctui's note
    assert points(jp, run_id) == [("loss", 0.5, None), ("acc", 0.7, None)]


def test_metrics_of_its_own_win_over_those_printed(jp):
    run_id = run(jp, "tracked")
    doc = wait_final(jp, run_id)
    assert doc["metrics"] == {"loss": 0.1}
    assert "metrics_from" not in doc
    # what it printed is still read (its own history file is the one shown)
    assert points(jp, run_id) == [("loss", 9.9, None), ("extra", 1.5, None)]
    from ctui.output_metrics import metrics_file

    assert metrics_file(jp.run_dir(run_id)).name == "metrics.jsonl"


def test_invalid_utf8_is_kept_byte_for_byte_and_still_read(jp):
    run_id = run(jp, "bytes")
    doc = wait_final(jp, run_id)
    log = (jp.run_dir(run_id) / "output.log").read_bytes()
    assert log == b"bad \xff\xfe bytes loss=0.5\r\nplain \xc3\xa9 acc=0.7"
    assert points(jp, run_id) == [("loss", 0.5, None), ("acc", 0.7, None)]
    assert doc["metrics"] == {"loss": 0.5, "acc": 0.7}


def test_a_process_left_holding_the_pipes_does_not_hold_the_run(jp):
    run_id = run(jp, "grandchild")
    try:
        doc = wait_final(jp, run_id, timeout=30)
        assert doc["status"] == "succeeded"
        log = (jp.run_dir(run_id) / "output.log").read_text()
        assert log.startswith("loss=0.5\n")
        assert "[ctui] stopped relaying the job's output" in log
        assert doc["metrics"] == {"loss": 0.5}
        assert idx(jp, run_id)[-1][2] == "c"
    finally:
        pgid = run_doc(jp, run_id).get("pgid")
        if pgid:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def spans_of(jp: Any, run_id: str) -> dict[str, bytes]:
    """The bytes of each stream, as output.idx says where they are in output.log."""
    data = (jp.run_dir(run_id) / "output.log").read_bytes()
    recs = idx(jp, run_id)
    out: dict[str, bytes] = {}
    for (a, _, stream), (b, _, _) in zip(recs, [*recs[1:], (len(data), 0.0, "")], strict=True):
        out[stream] = out.get(stream, b"") + data[a:b]
    return out


def test_a_docker_jobs_streams_and_metrics(jp):
    from test_docker_backend import _PROBLEM, IMAGE

    if _PROBLEM is not None:
        pytest.skip(_PROBLEM)
    with open(jp.root / "ctui.toml", "a") as fh:
        fh.write(
            f'\n[jobs.dock]\nbackend = "docker"\nimage = "{IMAGE}"\n'
            "command = \"sh -c 'echo Epoch 1; echo loss=0.5; echo warn >&2; echo acc=0.9'\"\n"
        )
    run_id = run(jp, "dock")
    doc = wait_final(jp, run_id, timeout=60)
    assert doc["status"] == "succeeded", doc
    spans = spans_of(jp, run_id)
    assert spans["e"] == b"warn\n"
    assert spans["o"] == b"Epoch 1\nloss=0.5\nacc=0.9\n"
    assert points(jp, run_id) == [("loss", 0.5, 1), ("acc", 0.9, 1)]
    assert doc["metrics"] == {"loss": 0.5, "acc": 0.9} and doc["metrics_from"] == "output"
