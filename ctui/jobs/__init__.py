"""Launching and supervising training jobs.

- `launch.launch_run` / `launch.stop_run`: the one launch path (CLI, TUI, triggers, reproduce).
- `supervisor`: the detached process (`python -m ctui.jobs.supervisor STATE_DIR RUN_ID`) that
  runs a local or Docker job, writes its log and resource samples, and records the outcome.
- `reconcile.refresh`: marks vanished supervisors `lost`, starts queued runs, polls Slurm.
- `command`: params → argv tokens / environment variables (never a shell string).
- `backends/`: where a job actually runs (local process, Docker container, Slurm).

Nothing here imports textual, mlflow, dvc or docker at module level.
"""
