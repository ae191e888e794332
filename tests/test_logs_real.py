"""`ctui logs` on real jobs run through the real CLI: a real tqdm bar, a Hugging Face
Trainer-style dict printer, a `key=value` printer and a 2-rank torchrun-style printer."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import ctui, one_line_error
from jobs_helpers import PY, wait_final, wait_for, write_config

from ctui.errors import ExitCode
from ctui.logtext import render_line

pytestmark = pytest.mark.timeout(120)

TQDM_JOB = """
import os, sys, time
from tqdm import tqdm
stream = sys.stderr if "--stderr" in sys.argv else sys.stdout
for epoch in range(2):
    bar = tqdm(total=30, desc=f"epoch {epoch}", file=stream, mininterval=0, miniters=1,
               ncols=70, ascii=True)
    for step in range(30):
        bar.update(1)
        if epoch == 0 and step == 14 and "--hold" in sys.argv:
            while not os.path.exists("release"):  # the test looks at the bar half-drawn
                time.sleep(0.01)
    bar.close()
    print(f"epoch {epoch} done", flush=True)
"""

HF_JOB = """
for step in range(1, 4):
    print({'loss': round(1.0 / step, 4), 'learning_rate': 4e-05, 'epoch': float(step)})
print({'train_runtime': 1.5, 'train_loss': 0.61})
"""

KV_JOB = """
import sys
for step in range(5):
    print(f"step={step} loss={1.0 - step * 0.2:.2f} Acc={0.5 + step * 0.1:.2f}")
print("WARNING: lr schedule ended", file=sys.stderr)
"""

RANKS_JOB = """
for step in range(3):
    for rank in range(2):
        print(f"[default{rank}]:step {step} loss={(rank + 1) * (3 - step)}")
print("launcher: all ranks done")
"""

STREAMS_JOB = """
import sys
print("out one", flush=True)
print("err one", file=sys.stderr, flush=True)
print("out two", flush=True)
"""


@pytest.fixture
def lp(project):
    root: Path = project.root
    jobs = {
        "bar": (TQDM_JOB, ""),
        "bar_err": (TQDM_JOB, " --stderr"),
        "bar_hold": (TQDM_JOB, " --hold"),
        "hf": (HF_JOB, ""),
        "kv": (KV_JOB, ""),
        "ranks": (RANKS_JOB, ""),
        "streams": (STREAMS_JOB, ""),
    }
    config = []
    for name, (script, args) in jobs.items():
        (root / f"{name}.py").write_text(script)
        config.append(f'[jobs.{name}]\ncommand = "{PY} {name}.py{args}"\n')
    write_config(root, "\n".join(config))
    return project


def run_job(project, job: str, *, wait: bool = True) -> str:
    out = ctui(project.root, "run", job, "--detach", "--json")
    assert out.returncode == 0, out.stderr
    run_id: str = json.loads(out.stdout)["id"]
    if wait:
        assert wait_final(project, run_id, timeout=60)["status"] == "succeeded"
    return run_id


def job_lines(out: subprocess.CompletedProcess[str]) -> list[str]:
    """The job's own lines (ctui's `[ctui] …` notes left out)."""
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if not line.startswith("[ctui]")]


BAR_END = re.compile(r"epoch (\d): 100%\|#+\| 30/30 \[")


def test_a_tqdm_bar_shows_its_final_state(lp):
    run_id = run_job(lp, "bar")
    raw = (lp.run_dir(run_id) / "output.log").read_bytes()
    assert raw.count(b"\r") >= 60  # the real bar redrew itself at every step
    out = ctui(lp.root, "logs", run_id)
    assert "\r" not in out.stdout
    lines = job_lines(out)
    assert [BAR_END.match(x) is not None for x in lines] == [True, False, True, False]
    assert lines[0].startswith("epoch 0: 100%|") and lines[2].startswith("epoch 1: 100%|")
    assert lines[1::2] == ["epoch 0 done", "epoch 1 done"]
    assert "0/30" not in lines[0].replace("30/30", "")  # no earlier state glued on

    assert job_lines(ctui(lp.root, "logs", run_id, "-n", "1")) == ["epoch 1 done"]
    last_two = ctui(lp.root, "logs", run_id, "-n", "2").stdout.splitlines()
    assert BAR_END.match(last_two[0]) and last_two[1] == "epoch 1 done"


def test_a_tqdm_bar_on_stderr_told_from_stdout(lp):
    """tqdm's default: the bar on stderr, the job's prints on stdout (two pipes: how lines
    of the two interleave is up to the relay, so only each stream's own order is asserted)."""
    run_id = run_job(lp, "bar_err")
    errs = job_lines(ctui(lp.root, "logs", run_id, "--stream", "err"))
    ends = [BAR_END.match(x) for x in errs]
    assert [m.group(1) if m else x for m, x in zip(ends, errs, strict=True)] == ["0", "1"]
    outs = job_lines(ctui(lp.root, "logs", run_id, "--stream", "out"))
    assert outs == ["epoch 0 done", "epoch 1 done"]
    whole = job_lines(ctui(lp.root, "logs", run_id))
    assert all(e in whole for e in errs)  # each bar's end is a line of the whole log, but
    # the relay reads the pipes apart: a stdout line can land on a half-drawn stderr bar
    # there (`--stream` reads each stream's own bytes, so it never does)
    assert all(any(o in line for line in whole) for o in outs)


def test_grep_on_a_hf_trainer_log_counts_and_lists_matches(lp):
    run_id = run_job(lp, "hf")
    out = ctui(lp.root, "logs", run_id, "--grep", "'loss'")
    assert job_lines(out) == [
        "{'loss': 1.0, 'learning_rate': 4e-05, 'epoch': 1.0}",
        "{'loss': 0.5, 'learning_rate': 4e-05, 'epoch': 2.0}",
        "{'loss': 0.3333, 'learning_rate': 4e-05, 'epoch': 3.0}",
    ]
    assert out.stderr.strip() == "3 matching lines"
    as_json = ctui(lp.root, "logs", run_id, "--grep", "train_", "--json")
    assert as_json.returncode == 0, as_json.stderr
    (match,) = json.loads(as_json.stdout)
    assert match["run"] == run_id and match["text"].startswith("{'train_runtime': 1.5")
    all_lines = ctui(lp.root, "logs", run_id).stdout.splitlines()
    assert all_lines[match["line_no"] - 1] == match["text"]  # line numbers count from 1


def test_grep_regex_case_and_bad_patterns_on_key_value_lines(lp):
    run_id = run_job(lp, "kv")
    low = ctui(lp.root, "logs", run_id, "--grep", r"loss=0\.[0-4]", "--regex")
    assert job_lines(low) == ["step=3 loss=0.40 Acc=0.80", "step=4 loss=0.20 Acc=0.90"]
    assert low.stderr.strip() == "2 matching lines"
    # plain text by default: the dot is a dot, not any character
    assert job_lines(ctui(lp.root, "logs", run_id, "--grep", "loss=0.")) != []
    assert job_lines(ctui(lp.root, "logs", run_id, "--grep", "loss=0\\.")) == []
    assert job_lines(ctui(lp.root, "logs", run_id, "--grep", "acc=0.9")) == []
    assert job_lines(ctui(lp.root, "logs", run_id, "--grep", "acc=0.9", "-i")) == [
        "step=4 loss=0.20 Acc=0.90"
    ]
    last = ctui(lp.root, "logs", run_id, "--grep", "step=", "-n", "2")
    assert job_lines(last) == ["step=3 loss=0.40 Acc=0.80", "step=4 loss=0.20 Acc=0.90"]
    assert job_lines(ctui(lp.root, "logs", run_id, "--stream", "err")) == [
        "WARNING: lr schedule ended"
    ]

    bad = ctui(lp.root, "logs", run_id, "--grep", "loss=(", "--regex")
    one_line_error(bad, ExitCode.BAD_INPUT, "--grep", "'loss=('", "not a valid regular")
    assert bad.stdout == "" and len(bad.stderr.splitlines()) == 1
    one_line_error(ctui(lp.root, "logs", run_id, "--json"), ExitCode.BAD_INPUT, "--grep")
    one_line_error(
        ctui(lp.root, "logs", run_id, "--stream", "both"), ExitCode.BAD_INPUT, "out or err"
    )


def test_rank_filter_on_a_two_rank_log(lp):
    run_id = run_job(lp, "ranks")
    one = job_lines(ctui(lp.root, "logs", run_id, "--rank", "1"))
    assert one == [f"[default1]:step {s} loss={2 * (3 - s)}" for s in range(3)]
    zero = job_lines(ctui(lp.root, "logs", run_id, "--rank", "0", "-n", "1"))
    assert zero == ["[default0]:step 2 loss=1"]
    assert job_lines(ctui(lp.root, "logs", run_id, "--rank", "2")) == []
    both = job_lines(ctui(lp.root, "logs", run_id, "--rank", "1", "--grep", "step 0"))
    assert both == ["[default1]:step 0 loss=6"]


def test_grep_across_several_runs_prefixes_each_match(lp):
    kv, hf = run_job(lp, "kv"), run_job(lp, "hf")
    out = ctui(lp.root, "logs", "--grep", "loss", kv, hf)
    lines = out.stdout.splitlines()
    assert sum(line.startswith(f"{kv}: step=") for line in lines) == 5
    assert sum(line.startswith(f"{hf}: {{'loss'") for line in lines) == 3
    assert f"{hf}: {{'train_runtime': 1.5, 'train_loss': 0.61}}" in lines
    assert out.stderr.strip() == "9 matching lines in 2 runs"
    matches = json.loads(ctui(lp.root, "logs", "--grep", "loss", kv, hf, "--json").stdout)
    assert {m["run"] for m in matches} == {kv, hf} and len(matches) == 9
    one_line_error(ctui(lp.root, "logs", "-f", kv, hf), ExitCode.BAD_INPUT, "one run")


STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (.*)$")


def test_timestamps_and_streams_from_a_real_jobs_output_idx(lp):
    before = time.time()
    run_id = run_job(lp, "streams")
    after = time.time()
    assert (lp.run_dir(run_id) / "output.idx").exists()
    out = ctui(lp.root, "logs", run_id, "-t")
    assert out.returncode == 0, out.stderr
    stamped = [STAMP.match(line) for line in out.stdout.splitlines()]
    assert all(stamped), out.stdout
    texts = [m.group(2) for m in stamped if m and not m.group(2).startswith("[ctui]")]
    # two pipes: each stream's order holds, not how the two interleave
    assert sorted(texts) == ["err one", "out one", "out two"]
    for m in stamped:
        assert m is not None
        when = time.mktime(time.strptime(m.group(1)[:19], "%Y-%m-%d %H:%M:%S"))
        assert before - 1 <= when <= after + 1
    assert job_lines(ctui(lp.root, "logs", run_id, "--stream", "err")) == ["err one"]
    assert ctui(lp.root, "logs", run_id, "--stream", "out").stdout.splitlines() == [
        "out one",
        "out two",
    ]
    tail = ctui(lp.root, "logs", run_id, "-t", "--stream", "out", "-n", "1").stdout
    assert STAMP.match(tail) and tail.endswith(" out two\n")


def test_timestamps_pad_lines_without_a_record_and_runs_without_an_index(project):
    from ctui.store import Store

    store = Store(project.store_file)
    for rid in ("0123456789ab", "0123456789cd"):
        store.insert_run({"id": rid, "job": "x", "status": "failed"})
        project.run_dir(rid).mkdir(parents=True, exist_ok=True)
    run_dir = project.run_dir("0123456789ab")
    (run_dir / "output.log").write_bytes(b"early\nout\nerr\n")
    (run_dir / "output.idx").write_text("6 1700000000.250 o\n10 1700000001.500 e\n14 17")
    lines = ctui(project.root, "logs", "0123456789ab", "-t").stdout.splitlines()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1700000000))
    assert lines == [" " * 24 + "early", f"{stamp}.250 out", lines[2]]
    assert lines[2].endswith(".500 err")
    assert ctui(project.root, "logs", "0123456789ab", "--stream", "err").stdout == "err\n"

    old = project.run_dir("0123456789cd")
    (old / "output.log").write_bytes(b"no index \xff\xfe\n")  # and not UTF-8 either
    plain = ctui(project.root, "logs", "0123456789cd")
    assert plain.returncode == 0 and plain.stdout == "no index \ufffd\ufffd\n"
    stamped = ctui(project.root, "logs", "0123456789cd", "-t").stdout
    assert stamped == " " * 24 + "no index \ufffd\ufffd\n"
    one_line_error(
        ctui(project.root, "logs", "0123456789cd", "--stream", "out"),
        ExitCode.BAD_INPUT,
        "output.idx",
    )


def _ctui_in_pty(root: Path, *args: str, until: bytes, then: Path) -> bytes:
    """`ctui ARGS` with a terminal as its stdout: all it wrote until it ended. When `until`
    has been seen, the file `then` is created (the job waits for it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTUI_", "MLFLOW_"))}
    env["COLUMNS"], env["LINES"] = "100", "24"
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctui", *args],
        cwd=root,
        stdin=follower,
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # the process ended and closed the terminal
                    break
                if not data:
                    break
                seen += data
                if until in seen and not then.exists():
                    then.write_text("go\n")
            elif proc.poll() is not None:
                break
    finally:
        os.close(leader)
        proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    return seen


def test_follow_on_a_terminal_updates_the_bar_in_place(lp):
    run_id = run_job(lp, "bar_hold", wait=False)
    log = lp.run_dir(run_id) / "output.log"
    wait_for(lambda: log.exists() and b"15/30" in log.read_bytes(), timeout=60)
    raw = _ctui_in_pty(lp.root, "logs", "-f", run_id, until=b"15/30", then=lp.root / "release")
    wait_final(lp, run_id)
    text = raw.decode().replace("\r\n", "\n")  # the terminal's own newline translation
    # the half-drawn bar was written in place: a \r, its state, erase to the line's end
    assert re.search(r"\repoch 0:  50%\|[#0-9 ]+\| 15/30 [^\n]*\x1b\[K", text), text
    # what the terminal shows in the end: each bar once, in its final state
    screen = [render_line(line) for line in text.split("\n")]
    shown = [line for line in screen if line and not line.startswith("[ctui]")]
    assert [BAR_END.match(x) is not None for x in shown] == [True, False, True, False], shown
    assert shown[1::2] == ["epoch 0 done", "epoch 1 done"]
    piped = job_lines(ctui(lp.root, "logs", run_id))
    assert [x.split(" [")[0] for x in shown] == [x.split(" [")[0] for x in piped]


def test_follow_in_a_pipe_prints_only_ended_lines(lp):
    run_id = run_job(lp, "bar_hold", wait=False)
    log = lp.run_dir(run_id) / "output.log"
    wait_for(lambda: log.exists() and b"15/30" in log.read_bytes(), timeout=60)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTUI_", "MLFLOW_"))}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ctui", "logs", "-f", run_id, *args],
            cwd=lp.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for args in ([], ["--grep", "done"])
    ]
    (lp.root / "release").write_text("go\n")
    (stdout, stderr), (grepped, counted) = (p.communicate(timeout=90) for p in procs)
    assert [p.returncode for p in procs] == [0, 0], (stderr, counted)
    assert grepped == b"epoch 0 done\nepoch 1 done\n"  # filtered while following
    assert counted.strip().endswith(b"2 matching lines")
    assert b"\r" not in stdout and b"\x1b[K" not in stdout
    lines = [x for x in stdout.decode().splitlines() if not x.startswith("[ctui]")]
    assert [BAR_END.match(x) is not None for x in lines] == [True, False, True, False], lines
    assert lines[1::2] == ["epoch 0 done", "epoch 1 done"]
