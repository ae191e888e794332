"""A tracking server's REST API over urllib: milliseconds and no mlflow import (~2 s).

For the cheap questions ctui asks on the hot path — does the experiment exist (as a job
starts), has anything changed since the last import — where importing mlflow would cost more
than the whole answer. Credentials and TLS come from MLflow's own variables, as its client
reads them (`MLFLOW_TRACKING_USERNAME`/`_PASSWORD`, `_TOKEN`, `_INSECURE_TLS`,
`_SERVER_CERT_PATH`). Errors are urllib's (`HTTPError` with the status, `URLError`, timeouts).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.parse
import urllib.request
from typing import Any

from ctui.integrations.mlflow_uri import safe_uri

API = "/api/2.0/mlflow/"


def call(uri: str, path: str, body: dict[str, Any] | None = None, *, timeout: float) -> Any:
    """GET (no body; `path` may carry a query) or POST `body` to `<server>/api/2.0/mlflow/<path>`;
    the decoded JSON answer."""
    url = safe_uri(uri).rstrip("/") + API + path
    headers = {"Content-Type": "application/json"}
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if user and password:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    context = None
    if url.startswith("https://"):
        if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
            context = ssl._create_unverified_context()
        else:
            cafile = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None
            context = ssl.create_default_context(cafile=cafile)
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        return json.loads(response.read() or b"{}")


def experiment_by_name(uri: str, name: str, *, timeout: float) -> Any:
    """The server's answer to `experiments/get-by-name` (an `HTTPError` 404 when it has none)."""
    path = "experiments/get-by-name?" + urllib.parse.urlencode({"experiment_name": name})
    return call(uri, path, timeout=timeout)
