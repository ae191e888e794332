"""What follows a promotion: `on_promote`, the MLflow Model Registry alias, notifications.

Both commands are argv like a job command (split with `shlex.split`, then `{placeholders}`
filled per token: a value never passes through a shell), run from the project root in their
own process group, killed as a group when they outlast their timeout. What they print goes
through `redact_text` before ctui writes it. Nothing here raises: a failure is a value in the
promotion record (`on_promote`, `registered`) or a line in `.ctui/notify.log`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctui.config import Config
    from ctui.gate.config import GateConfig
    from ctui.project import Project

#: placeholders `on_promote` and `[notify] command` may use
ON_PROMOTE_PLACEHOLDERS = ("run_id", "run_dir", "job", "previous")
NOTIFY_PLACEHOLDERS = ("event", "job", "run_id", "verdict", "champion")
ON_PROMOTE_LOG = "on_promote.log"
NOTIFY_LOG = "notify.log"
DEFAULT_ON_PROMOTE_TIMEOUT = 600.0
DEFAULT_NOTIFY_TIMEOUT = 30.0
#: after SIGTERM to a timed-out command's group, this long before SIGKILL
KILL_GRACE = 2.0
#: how much of a notify command's output its notify.log line keeps
OUTPUT_TAIL = 500


def fill_argv(template: str, values: Mapping[str, Any]) -> list[str]:
    """`template` split like a shell would, then `{name}` replaced in each token.

    ValueError names the problem (a token that does not split, an unknown placeholder)."""
    try:
        tokens = shlex.split(template)
    except ValueError as exc:
        raise ValueError(f"cannot split {template!r}: {exc}") from None
    if not tokens:
        raise ValueError("the command is empty")
    from ctui.jobs.command import PlaceholderError, fill_token

    def render(value: Any) -> str:
        return "" if value is None else str(value)

    try:
        return [fill_token(token, values, render) for token in tokens]
    except PlaceholderError as exc:
        if exc.kind == "syntax":
            raise ValueError(f"bad placeholder in {exc.token!r}: {exc}") from None
        known = ", ".join("{" + k + "}" for k in values)
        raise ValueError(f"unknown placeholder {{{exc.name}}} (known: {known})") from None


def check_template(template: str, placeholders: tuple[str, ...]) -> None:
    """For config checks: ValueError when `template` cannot become an argv."""
    fill_argv(template, dict.fromkeys(placeholders, ""))


def _redacted(text: str) -> str:
    from ctui.manifest.redact import redact_text

    return redact_text(text)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run_command(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    log: Path,
    stdin: bytes | None = None,
) -> dict[str, Any]:
    """Run `argv` to its end or its timeout (then its whole process group is killed); its
    output, redacted, goes to `log`. `{"ok", "exit_code", "error", "duration"}`."""
    start = time.monotonic()
    raw = log.with_name(f".{log.name}.part")
    code: int | None = None
    error: str | None = None
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(raw, "wb") as out:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                proc.communicate(stdin, timeout=timeout)
                code = proc.returncode
                if code != 0:
                    error = f"exited {code}" if code > 0 else f"killed by signal {-code}"
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(KILL_GRACE)
                except subprocess.TimeoutExpired:
                    pass
                _signal_group(proc.pid, signal.SIGKILL)  # stragglers in its group too
                proc.wait()
                error = f"timed out after {timeout:g} s: killed"
            finally:
                _signal_group(proc.pid, signal.SIGKILL)
                if proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
    except FileNotFoundError:
        error = f"command not found: {argv[0]}"
    except OSError as exc:
        error = f"cannot run {argv[0]}: {exc.strerror or exc}"
    try:
        if raw.exists():
            text = raw.read_bytes().decode("utf-8", errors="replace")
            log.write_text(_redacted(text))
            raw.unlink()
    except OSError as exc:
        error = error or f"cannot write {log}: {exc.strerror or exc}"
    return {
        "ok": error is None,
        "exit_code": code,
        "error": error,
        "duration": round(time.monotonic() - start, 3),
    }


#: variables that describe one run or one event: never inherited from whoever called ctui
_SCOPED = (
    "CTUI_RUN_ID",
    "CTUI_RUN_DIR",
    "CTUI_JOB",
    "CTUI_PREVIOUS_RUN",
    "CTUI_PROMOTION",
    "CTUI_MODEL_NAME",
    "CTUI_MODEL_VERSION",
    "CTUI_EVENT",
)


def _base_env() -> dict[str, str]:
    """ctui's environment (CTUI_STORE and the like stay) without another run's variables."""
    return {
        k: v for k, v in os.environ.items() if k not in _SCOPED and not k.startswith("CTUI_PARAM_")
    }


def run_on_promote(
    project: Project, gate: GateConfig, promotion: Mapping[str, Any], extra_env: Mapping[str, str]
) -> dict[str, Any]:
    run_id = str(promotion["run"])
    run_dir = Path(project.run_dir(run_id))
    previous = promotion.get("previous") or ""
    log = run_dir / ON_PROMOTE_LOG
    values = {"run_id": run_id, "run_dir": str(run_dir), "job": promotion["job"]}
    values["previous"] = previous
    result: dict[str, Any] = {"argv": [], "log": str(log)}
    try:
        argv = fill_argv(str(gate.on_promote), values)
    except ValueError as exc:
        return {**result, "ok": False, "exit_code": None, "error": str(exc), "duration": 0.0}
    env = {
        **_base_env(),
        "CTUI_RUN_ID": run_id,
        "CTUI_RUN_DIR": str(run_dir),
        "CTUI_JOB": str(promotion["job"]),
        "CTUI_PREVIOUS_RUN": str(previous),
        "CTUI_PROMOTION": str(promotion.get("id") or ""),
        **extra_env,
    }
    timeout = gate.on_promote_timeout or DEFAULT_ON_PROMOTE_TIMEOUT
    ran = run_command(argv, cwd=Path(project.root), env=env, timeout=timeout, log=log)
    return {**result, "argv": [_redacted(a) for a in argv], **ran}


def after_promotion(project: Project, config: Config, promotion: dict[str, Any]) -> dict[str, Any]:
    """Register the run's model and move the alias (with `register`), then run the job's
    `on_promote`, for a promotion record; returns the fields to merge into the record
    (`on_promote`, `registered`: None where the gate asks for neither). Never raises."""
    out: dict[str, Any] = {"on_promote": None, "registered": None}
    gate = config.gate_of(str(promotion.get("job")))
    if gate is None:
        return out
    extra: dict[str, str] = {}
    if gate.register:
        reg = out["registered"] = _register(project, config, gate, promotion)
        if reg.get("ok"):
            extra = {"CTUI_MODEL_NAME": str(reg["name"]), "CTUI_MODEL_VERSION": str(reg["version"])}
    if gate.on_promote:
        try:
            out["on_promote"] = run_on_promote(project, gate, promotion, extra)
        except Exception as exc:
            out["on_promote"] = {
                "argv": [],
                "ok": False,
                "exit_code": None,
                "error": f"{type(exc).__name__}: {exc}",
                "duration": 0.0,
                "log": "",
            }
    return out


def after_rollback(project: Project, config: Config, promotion: dict[str, Any]) -> dict[str, Any]:
    """For the record of a rollback that follows a failed `on_promote`: the registry alias
    back on the previous champion's version (found, not registered again); `on_promote` is
    not run again. The fields to merge (`registered`). Never raises."""
    gate = config.gate_of(str(promotion.get("job")))
    if gate is None or not gate.register:
        return {"registered": None}
    return {"registered": _register(project, config, gate, promotion)}


def _register(
    project: Project, config: Config, gate: GateConfig, promotion: dict[str, Any]
) -> dict[str, Any]:
    """The promoted run's model in MLflow's registry, alias `champion` on it (an earlier
    version of the same run's model is reused). Never raises."""
    assert gate.register
    try:
        from ctui.integrations import mlflow_registry

        return mlflow_registry.register(
            project, config, str(promotion["run"]), gate.register, gate.register_artifact or "model"
        )
    except Exception as exc:  # what follows a promotion never undoes it by raising
        return {"ok": False, "name": gate.register, "error": f"{type(exc).__name__}: {exc}"}


def _notify_log(project: Project, entry: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        path = Path(project.state_dir) / NOTIFY_LOG
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(_redacted(json.dumps(entry, default=str)) + "\n")


def notify(project: Project, config: Config, event: str, context: dict[str, Any]) -> None:
    """`[notify] command` for an event (`promoted`, `rejected`) listed in `[notify] on`: argv
    with the placeholders filled from `context`, the whole context as JSON on its stdin.
    Every call is one JSON line in `.ctui/notify.log` (with the reason when it failed or
    timed out). Never raises; never waits past `[notify] timeout`."""
    try:
        nc = config.notify
        command, events = nc.command, nc.on
        if not command or event not in events:
            return
        values = {name: context.get(name, "") for name in NOTIFY_PLACEHOLDERS}
        values["event"] = event
        payload = {**context, "event": event}
        entry: dict[str, Any] = {"at": time.time(), "event": event, "run_id": values["run_id"]}
        try:
            argv = fill_argv(str(command), values)
        except ValueError as exc:
            _notify_log(project, {**entry, "ok": False, "error": str(exc)})
            return
        timeout = nc.timeout or DEFAULT_NOTIFY_TIMEOUT
        fd, name = tempfile.mkstemp(prefix="notify.", suffix=".out", dir=project.state_dir)
        os.close(fd)
        out = Path(name)
        ran = run_command(
            argv,
            cwd=Path(project.root),
            env={**_base_env(), "CTUI_EVENT": event},
            timeout=timeout,
            log=out,
            stdin=json.dumps(payload, default=str).encode(),
        )
        with contextlib.suppress(OSError):
            ran["output"] = out.read_text(errors="replace")[-OUTPUT_TAIL:]
            out.unlink()
        _notify_log(project, {**entry, "argv": [_redacted(a) for a in argv], **ran})
    except Exception as exc:  # a notification never stops what it reports on
        _notify_log(project, {"at": time.time(), "event": event, "ok": False, "error": repr(exc)})
