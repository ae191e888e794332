"""Where MLflow runs go: the tracking URI in force, why, and its credentials kept out of files.

Precedence, as MLflow's own (`mlflow.set_tracking_uri` > `MLFLOW_TRACKING_URI` > the default),
with ctui's config in between:

1. `--tracking-uri` on the command line (`ctui import mlflow`);
2. `[mlflow] tracking_uri` in ctui.toml (a relative sqlite path is relative to the project);
3. the `MLFLOW_TRACKING_URI` environment variable (a relative sqlite path is relative to the
   current folder, as MLflow reads it);
4. the local default, `sqlite:///<project>/.ctui/mlflow.db`.

Credentials: a URI's `user:password@` is never written by ctui (run documents, `spec.json`,
the job's environment, messages). ctui's own client and the jobs it launches get them through
MLflow's variables (`MLFLOW_TRACKING_USERNAME`/`_PASSWORD`, set in this process only when the
URI carried them and they are not set already) and the URI without them. No mlflow import here.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctui.errors import UnavailableError

#: where each URI came from, as `ctui doctor` / `ctui show` say it
FROM_CLI = "--tracking-uri"
FROM_CONFIG = "[mlflow] tracking_uri"
FROM_ENV = "MLFLOW_TRACKING_URI"
FROM_DEFAULT = "default"


@dataclass(frozen=True)
class TrackingUri:
    """A resolved tracking URI. `uri` may carry credentials: use `safe` for anything shown."""

    uri: str
    source: str

    @property
    def safe(self) -> str:
        return safe_uri(self.uri)

    def why(self) -> str:
        """One phrase: where the URI came from and what it overrode."""
        return {
            FROM_CLI: "set by --tracking-uri",
            FROM_CONFIG: "set by [mlflow] tracking_uri in ctui.toml",
            FROM_ENV: "set by MLFLOW_TRACKING_URI; [mlflow] tracking_uri is not set",
            FROM_DEFAULT: "the local default: neither [mlflow] tracking_uri nor "
            "MLFLOW_TRACKING_URI is set",
        }[self.source]


def _ml(config: Any) -> Any:
    """The MlflowConfig of a Config (or the MlflowConfig itself)."""
    return getattr(config, "mlflow", config)


def _absolute(uri: str, base: Path) -> str:
    """A relative sqlite path or a bare path made absolute against `base`."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        rel = uri[len("sqlite:///") :]
        return f"sqlite:///{(base / rel).resolve()}"
    if "://" not in uri and not uri.startswith(("databricks", "file:")):
        return str((base / uri).resolve())
    return uri


def default_uri(project: Any) -> str:
    return f"sqlite:///{Path(project.state_dir).resolve() / 'mlflow.db'}"


def resolve(
    project: Any,
    config: Any = None,
    *,
    cli: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> TrackingUri:
    """The tracking URI in force and where it came from (see the module's precedence)."""
    env = os.environ if environ is None else environ
    if cli:
        return TrackingUri(_absolute(cli, Path.cwd()), FROM_CLI)
    configured = getattr(_ml(config), "tracking_uri", None) if config is not None else None
    if configured:
        return TrackingUri(_absolute(str(configured), Path(project.root)), FROM_CONFIG)
    from_env = env.get("MLFLOW_TRACKING_URI")
    if from_env:
        return TrackingUri(_absolute(from_env, Path.cwd()), FROM_ENV)
    return TrackingUri(default_uri(project), FROM_DEFAULT)


def experiment_name(
    project: Any, config: Any = None, environ: Mapping[str, str] | None = None
) -> str:
    """`[mlflow] experiment` > `MLFLOW_EXPERIMENT_NAME` > the project folder's name."""
    env = os.environ if environ is None else environ
    name = getattr(_ml(config), "experiment", None) if config is not None else None
    return str(name or env.get("MLFLOW_EXPERIMENT_NAME") or Path(project.root).resolve().name)


# -- credentials -------------------------------------------------------------------------------


def safe_uri(uri: str) -> str:
    """The URI without `user:password@` (what ctui may write or print)."""
    return split_credentials(uri)[0]


def split_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """(the URI without userinfo, user, password)."""
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:
        return uri, None, None
    if parts.username is None and parts.password is None:
        return uri, None, None
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    safe = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    user = urllib.parse.unquote(parts.username) if parts.username else None
    password = urllib.parse.unquote(parts.password) if parts.password else None
    return safe, user, password


def use_credentials(uri: str) -> str:
    """Move a URI's `user:password@` into MLflow's own variables (unless they are set) and
    return the URI without them. The variables reach ctui's MLflow client and, through the
    supervisor's environment, a local job; they are never written to a file."""
    safe, user, password = split_credentials(uri)
    if user:
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", user)
    if password:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", password)
    return safe


# -- can it be read? ---------------------------------------------------------------------------


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (None for other URIs and in-memory ones)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = urllib.parse.urlsplit(uri).path
    if not path or path in ("/", "/:memory:"):
        return None
    return Path(path[1:] if not uri.startswith("sqlite:////") else path)


def sqlite_rows(uri: str, sql: str, args: Any = (), *, timeout: float) -> list[Any] | None:
    """The rows of `sql` on the sqlite store at `uri`, opened read-only; None when the URI
    names no sqlite file there or the query fails (no such table, a locked database)."""
    import sqlite3

    db = sqlite_path(uri)
    if db is None or not db.is_file():
        return None
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout) as con:
            return con.execute(sql, args).fetchall()
    except sqlite3.Error:
        return None


def reachable(uri: str, timeout: float = 3.0) -> bool:
    """A cheap check before the (slow to fail) MLflow client: GET /health on a server."""
    if not is_http(uri):
        return True
    try:
        import urllib.request  # ~15 ms: only when a server is asked

        with urllib.request.urlopen(safe_uri(uri).rstrip("/") + "/health", timeout=timeout):
            return True
    except OSError:
        return False


def check_readable(tracking: TrackingUri) -> None:
    """For commands that read MLflow (`ctui import mlflow`): a missing sqlite file or an
    unreachable server is bad input (exit 2), never an empty database created on the way."""
    db = sqlite_path(tracking.uri)
    if db is not None and not db.is_file():
        raise UnavailableError(
            f"no MLflow database at {tracking.safe} — {tracking.why()}: {db} does not exist",
            hint="check the path, or pass --tracking-uri",
        )
    if not reachable(tracking.uri):
        raise UnavailableError(
            f"MLflow at {tracking.safe} is not reachable — {tracking.why()}",
            hint="start the tracking server, or pass --tracking-uri",
        )


def describe(project: Any, config: Any) -> tuple[str, str]:
    """(level, one line) for `ctui doctor`: where runs go, why, and whether it is there."""
    tracking = resolve(project, config)
    enabled = bool(config is not None and getattr(_ml(config), "enabled", False))
    if not enabled:
        return "ok", (
            f"MLflow sync off ([mlflow] enabled is not set); with it on, runs would go to "
            f"{tracking.safe} — {tracking.why()}"
        )
    level, state = "ok", ""
    db = sqlite_path(tracking.uri)
    if db is not None:
        state = " (the database exists)" if db.is_file() else " (created by the first run)"
    elif is_http(tracking.uri):
        if reachable(tracking.uri):
            state = " (the server answers)"
        else:
            level, state = "warn", " (the server does not answer: syncs stay pending)"
    return level, f"MLflow runs go to {tracking.safe}{state} — {tracking.why()}"
