"""Triggers: turn "train again" into policy, and the `ctui watch` loop that applies it.

Declared in ctui.toml, each naming a job::

    [triggers.new-data]
    job = "train"
    on = "data"              # data | code | schedule | metric | after | promoted
    cooldown = "10m"         # optional, any kind: at most one launch per period
    enabled = true           # `ctui triggers enable/disable` overrides this in the store
    params = { data = "{data_hash}" }   # job params; placeholders per kind (below)

    # on = "data":     paths = ["data/raw"] (narrow), debounce = "5s", outs = false
    # on = "code":     branch = "main", paths = ["src"]                  → {commit}
    # on = "schedule": every = "1h"  or  cron = "0 3 * * *" (local time) → {slot}
    # on = "metric":   command = "python drift.py" or file = "drift.txt",
    #                  threshold = 0.3, direction = "above"|"below", timeout = "60s" → {value}
    # on = "after":    after = "train", status = "succeeded" (or a list) → {upstream_run}
    # on = "promoted": after = "train" (a new champion of that job)
    #                  → {upstream_run} {promotion} {previous}
    # every kind:      {trigger} {cause} {cause_key} {time}

Modules:

- `validate.validate_trigger(tc, path, jobs)` / `validate_all(config)`: kind-specific checks.
- `evaluate.evaluate_all(project, config, store_data, now=)`: one look at every trigger →
  `Evaluation`s (fire / idle / wait / cooldown / disabled / error), each cause with a
  deterministic key (`data:<trigger>:<data hash>`, `code:<trigger>:<sha>`,
  `schedule:<trigger>:<slot>`, `metric:<trigger>:<crossing>`, `after:<trigger>:<run id>`,
  `promoted:<trigger>:<promotion id>`, `manual:<trigger>:<time>`). One module per kind:
  data, code, schedule, metric, after, promoted.
- `state`: trigger state (`TRIGGERS`) and the ledger of causes (`CAUSES`): intent → launched.
- `launching`: `act` (intent, launch, confirm), `reconcile_intents`, `fire_manually`.
- `watch`: `run_cycle`, `watch_loop`, the `.ctui/watch.lock` single-watcher lock.
- `listing`: `list_triggers`, `set_trigger_enabled` (the CLI table and the TUI screen).

Nothing here imports textual; dvc and mlflow are never imported at module level (DVC files
are parsed by `ctui.manifest`).
"""
