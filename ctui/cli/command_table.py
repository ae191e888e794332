"""Every `ctui` command: the module that registers it and the line `ctui --help` lists.

`ctui --help` reads this table instead of importing thirty commands' modules (and the
libraries they import); a command's module is imported only when that command runs or
prints its own help. The order here is the order `ctui --help` lists them in.

The help lines are the first paragraph of each command's own help, word for word (line
breaks included: rich help keeps them); `tests/test_startup_imports.py` fails when one
drifts from the command's docstring.
"""

from __future__ import annotations

#: command name → (module whose `register(app)` adds it, first paragraph of its help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": (
        "ctui.cli.store_cmds",
        "Make a folder a ctui project: `.ctui/` state and a commented `ctui.toml`.",
    ),
    "runs": (
        "ctui.cli.store_cmds",
        "List runs (newest first). `#` is the run's number: `ctui show 42` or `#42`.",
    ),
    "show": (
        "ctui.cli.show_cmd",
        "Show one run: status, params, metrics, manifest hashes, where its files are.",
    ),
    "tag": ("ctui.cli.store_cmds", "Add or remove tags on a run."),
    "note": ("ctui.cli.store_cmds", "Set (or append to) a run's note."),
    "rm": ("ctui.cli.store_cmds", "Remove runs from the store (and their run folders)."),
    "export": (
        "ctui.cli.transfer_cmds",
        "Export runs as JSON lines (with their manifests), for `ctui import` elsewhere.",
    ),
    "import": (
        "ctui.cli.transfer_cmds",
        "Import runs from `ctui export` JSON lines, or from MLflow (`ctui import mlflow`).",
    ),
    "doctor": (
        "ctui.cli.store_cmds",
        "Check the store's health: readable, schema, segments and their indexes, typed runs,\n"
        "objects, run folders, temp files, stale runs.",
    ),
    "manifest": (
        "ctui.cli.manifest_cmds",
        "Capture and show the manifest here: data, code, env and compute, each with its hash.",
    ),
    "diff": (
        "ctui.cli.manifest_cmds",
        "Show why runs differ: a one-line verdict, then data, code, env, compute, params, metrics.",
    ),
    "run": ("ctui.cli.job_cmds", "Launch a run of JOB in the background (detached supervisor)."),
    "stop": (
        "ctui.cli.job_cmds",
        "Stop a run: SIGTERM to its process group, SIGKILL after the grace period.",
    ),
    "ps": ("ctui.cli.job_cmds", "List running runs (with --all, queued ones too)."),
    "logs": (
        "ctui.cli.log_cmds",
        "Print a run's log (stdout+stderr of the job) as a terminal shows it: a progress bar\n"
        "in its last state, colours kept.",
    ),
    "queue": ("ctui.cli.job_cmds", "Show queued runs in the order they will start."),
    "top": ("ctui.cli.job_cmds", "Live CPU, RAM and GPU of running runs (q or Ctrl-C quits)."),
    "jobs": ("ctui.cli.job_cmds", "List the jobs declared in ctui.toml with their params."),
    "watch": (
        "ctui.cli.trigger_cmds",
        "Evaluate triggers and launch the runs they call for — each cause exactly once.",
    ),
    "reproduce": (
        "ctui.cli.repro_cmds",
        "Rebuild RUN's code, data and environment, run it again and compare.",
    ),
    "champion": (
        "ctui.cli.gate_cmds",
        "Show the run whose model is the one in use for JOB (its champion); with no JOB, every "
        "job's champion.",
    ),
    "promote": (
        "ctui.cli.gate_cmds",
        "Make RUN its job's champion by hand (how a rollback is done).",
    ),
    "gate": (
        "ctui.cli.gate_cmds",
        "Evaluate RUN against its job's gate and champion now, and explain; promotes nothing.",
    ),
    "sync": (
        "ctui.cli.sync_cmds",
        "Retry MLflow syncs left pending (server down during a run): nothing lost, nothing "
        "twice.\nImported runs MLflow said were running are asked about again.",
    ),
    "import-mlflow": (
        "ctui.cli.sync_cmds",
        "Bring existing MLflow runs (params, metrics, tags, times, status, parents) into the\n"
        "store; again to update them (`--since last`: only what changed). Same as `ctui "
        "import\nmlflow`.",
    ),
    "tui": (
        "ctui.cli.tui_cmds",
        "Open the terminal UI (same as `ctui` with no command); with RUN, on that run.",
    ),
    "demo": (
        "ctui.cli.tui_cmds",
        "Build a small real demo project (git, DVC data, a tiny training job, a few runs).",
    ),
    "triggers": (
        "ctui.cli.trigger_cmds",
        "List triggers with their state; fire, enable or disable one.",
    ),
}
