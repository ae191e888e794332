"""Soak: writers, launchers, sweeps, a watcher and SIGKILLs at random, then count the damage.

A throwaway git project with a quick job (`max_concurrent = 3`), a slow one, and a schedule
trigger that fires every 2 s. For `--seconds` (default 120) these whole `ctui` processes run
at random, several at a time:

- writers: `ctui tag` / `ctui note` on a random run;
- launchers: `ctui run quick --detach`, one in three SIGKILLed after 0-300 ms;
- sweeps: `ctui run quick --detach --sweep x=1,...,5`, one in two SIGKILLed after 0-400 ms;
- the watcher: `ctui watch --interval 0.5`, SIGKILLed every 3-8 s and started again;
- the supervisor killer: SIGKILL of a random running run's supervisor now and then.

Then every process is stopped, the runs are left to settle (any reader reconciles them) and
the soak prints what it tried and what went wrong. Targets (issue 13): 0 lost runs (a launch
that printed a run id whose run is not in the store), 0 duplicate causes (two runs started for
one trigger cause), 0 unsupervised jobs (a job process still alive once its run has ended,
or with no supervisor), and the store readable by `ctui doctor` at the end.

    uv run python bench/soak.py [--seconds 120] [--seed 1]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

CTUI = str(Path(sys.executable).with_name("ctui"))
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CTUI_", "TEXTUAL"))}
PY = shlex.quote(sys.executable)
#: "running run 08jf… of job quick", "queued run 08jf…" as `ctui run` prints them
RUN_ID = re.compile(r"^(?:running|queued) run (\w+)", re.MULTILINE)
CONFIG = f"""
[jobs.quick]
command = "{PY} -u -c \\"import time; print('x={{x}}'); time.sleep(0.3)\\""
params = {{ x = 0 }}
max_concurrent = 3

[jobs.slow]
command = "{PY} -u -c \\"import time; print('slow'); time.sleep(2)\\""

[triggers.tick]
job = "slow"
on = "schedule"
every = "2s"
"""


def build(root: Path) -> None:
    def sh(*argv: str) -> None:
        subprocess.run(argv, cwd=root, check=True, capture_output=True, env=ENV)

    sh("git", "init", "-q", "-b", "main")
    (root / "ctui.toml").write_text(CONFIG)
    (root / ".gitignore").write_text(".ctui/\n")
    sh("git", "add", ".")
    sh(
        "git", "-c", "user.name=soak", "-c", "user.email=soak@ctui.invalid", "commit", "-qm", "init"
    )  # fmt: skip
    sh(CTUI, "init")


def ctui_json(root: Path, *args: str) -> Any:
    out = subprocess.run(
        [CTUI, *args, "--json"], cwd=root, capture_output=True, text=True, env=ENV, timeout=120
    )
    return orjson.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else None


class Soak:
    def __init__(self, root: Path, rng: random.Random):
        self.root, self.rng = root, rng
        self.tried: collections.Counter[str] = collections.Counter()
        self.killed: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.printed_ids: set[str] = set()
        self.procs: list[tuple[str, subprocess.Popen[str], float | None]] = []
        self.watcher: subprocess.Popen[str] | None = None
        self.watcher_kill_at = 0.0

    def spawn(self, kind: str, argv: list[str], kill_after: float | None) -> None:
        proc = subprocess.Popen(
            [CTUI, *argv],
            cwd=self.root,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.tried[kind] += 1
        deadline = None if kill_after is None else time.monotonic() + kill_after
        self.procs.append((kind, proc, deadline))

    def run_ids(self) -> list[str]:
        runs = ctui_json(self.root, "runs", "--limit", "10000") or []
        return [r["id"] for r in runs]

    def step(self) -> None:
        now = time.monotonic()
        for kind, proc, deadline in list(self.procs):
            if proc.poll() is None and deadline is not None and now >= deadline:
                proc.kill()
                self.killed[kind] += 1
            if proc.poll() is not None:
                out, err = proc.communicate()
                if proc.returncode == 0 and kind in ("launch", "sweep"):
                    self.printed_ids.update(RUN_ID.findall(out))
                elif proc.returncode not in (0, -signal.SIGKILL):
                    self.failed[kind] += 1
                    if self.failed[kind] <= 3:
                        print(f"  {kind} exited {proc.returncode}: {err.strip()[-200:]}")
                self.procs.remove((kind, proc, deadline))
        if len(self.procs) >= 6:
            return
        roll = self.rng.random()
        if roll < 0.35:
            ids = self.run_ids()
            if ids:
                run = self.rng.choice(ids)
                if self.rng.random() < 0.5:
                    self.spawn("write", ["tag", run, f"t{self.rng.randrange(5)}"], None)
                else:
                    self.spawn("write", ["note", run, f"soak {self.rng.random():.3f}"], None)
        elif roll < 0.70:
            kill = self.rng.uniform(0, 0.3) if self.rng.random() < 1 / 3 else None
            self.spawn("launch", ["run", "quick", "--detach", "-p", "x=1"], kill)
        elif roll < 0.85:
            kill = self.rng.uniform(0, 0.4) if self.rng.random() < 0.5 else None
            self.spawn("sweep", ["run", "quick", "--detach", "--sweep", "x=1,2,3,4,5"], kill)
        else:
            self.kill_a_supervisor()

    def kill_a_supervisor(self) -> None:
        runs = ctui_json(self.root, "ps") or []
        pids = [r.get("supervisor_pid") for r in runs if r.get("supervisor_pid")]
        if not pids:
            return
        self.tried["supervisor kill"] += 1
        try:
            os.kill(int(self.rng.choice(pids)), signal.SIGKILL)
            self.killed["supervisor"] += 1
        except ProcessLookupError:
            pass

    def tend_watcher(self) -> None:
        now = time.monotonic()
        if self.watcher is not None and self.watcher.poll() is None and now >= self.watcher_kill_at:
            self.watcher.kill()
            self.watcher.wait()
            self.killed["watcher"] += 1
        if self.watcher is None or self.watcher.poll() is not None:
            self.watcher = subprocess.Popen(
                [CTUI, "watch", "--interval", "0.5"],
                cwd=self.root,
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.tried["watcher start"] += 1
            self.watcher_kill_at = now + self.rng.uniform(3, 8)

    def stop(self) -> None:
        for _, proc, _ in self.procs:
            proc.wait()
        if self.watcher is not None and self.watcher.poll() is None:
            self.watcher.terminate()
            self.watcher.wait()


def settle(root: Path, timeout: float = 180) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        runs = ctui_json(root, "runs", "--limit", "10000") or []  # each read reconciles
        if not [r for r in runs if r["status"] in ("running", "queued")]:
            return runs
        if time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


def orphan_jobs(root: Path, runs: list[dict[str, Any]]) -> list[str]:
    """Job processes (they carry CTUI_RUN_ID) still alive although their run has ended."""
    status = {r["id"]: r["status"] for r in runs}
    found = []
    for proc in psutil.process_iter(["pid", "cwd"]):
        try:
            if proc.info["cwd"] != str(root):
                continue
            run_id = proc.environ().get("CTUI_RUN_ID")
        except (psutil.Error, OSError):
            continue
        if run_id and status.get(run_id) not in ("running", "queued"):
            found.append(f"pid {proc.pid} of run {run_id} ({status.get(run_id, 'not in store')})")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="ctui-soak-") as tmp:
        root = Path(tmp)
        build(root)
        soak = Soak(root, rng)
        print(f"soaking {root} for {args.seconds:.0f} s (seed {args.seed})", flush=True)
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            soak.tend_watcher()
            soak.step()
            time.sleep(0.02)
        soak.stop()
        runs = settle(root)
        in_store = {r["id"] for r in runs}
        lost_records = sorted(soak.printed_ids - in_store)
        started_by_cause: collections.Counter[str] = collections.Counter(
            r.get("cause_key") for r in runs if r.get("cause_key") and r.get("started")
        )
        duplicates = {k: n for k, n in started_by_cause.items() if n > 1}
        orphans = orphan_jobs(root, runs)
        stuck = [r["id"] for r in runs if r["status"] in ("running", "queued")]
        doctor = subprocess.run([CTUI, "doctor"], cwd=root, capture_output=True, env=ENV)
        statuses = collections.Counter(r["status"] for r in runs)

        print("\nattempts:", dict(soak.tried))
        print("SIGKILLs:", dict(soak.killed))
        print("non-kill failures:", dict(soak.failed) or "none")
        print("runs by status:", dict(statuses))
        print(f"causes acted on: {len(started_by_cause)}")
        print()
        rows = [
            ("lost runs (printed id, not in store)", len(lost_records), lost_records[:5]),
            ("duplicate causes", len(duplicates), list(duplicates.items())[:5]),
            ("unsupervised jobs left running", len(orphans), orphans[:5]),
            ("runs still running/queued after settling", len(stuck), stuck[:5]),
            ("ctui doctor exit code", doctor.returncode, []),
        ]
        for label, value, sample in rows:
            mark = "met" if value == 0 else "NOT MET"
            print(f"{label:<44} {value:>4}   target 0   {mark} {sample if sample else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
