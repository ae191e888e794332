"""Triggers: turn "train again" into policy, and the `ctui watch` loop that applies it.

- `validate.validate_trigger(tc, path, jobs)`: kind-specific checks of a `[triggers.NAME]` table.
- `evaluate.evaluate_all(project, config, store_data, now=)`: one look at every trigger →
  `Evaluation`s (fire / idle / wait / cooldown / disabled / error), with a deterministic
  cause key per reason to launch.
- `state`: trigger state and the intent → launched ledger of causes in the store
  (`TRIGGERS` and `CAUSES` tables) — the basis of "exactly once per cause".
- `watch`: `act` (intent, launch, confirm), `reconcile_intents`, `run_cycle`, `watch_loop`,
  `fire_manually`, `list_triggers`, `set_enabled` — shared by the CLI and the TUI.

Nothing here imports textual; dvc and mlflow are never imported (DVC files are parsed by
`ctui.manifest`).
"""
