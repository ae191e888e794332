"""Runs in and out of the store: `ctui export` (JSON lines with their manifest objects) and
`ctui import` (such a file, checked whole first, or `mlflow`)."""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from ctui.cli import common
from ctui.cli.store_cmds import select_runs
from ctui.cli.sync_cmds import SINCE_HELP
from ctui.errors import CtuiError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("import")(import_)


def _referenced_objects(objects: Any, doc: dict[str, Any]) -> dict[str, bytes]:
    """The manifest sections of a run and any object they point at (e.g. the patch)."""
    found: dict[str, bytes] = {}
    todo = [h for h in (doc.get("manifest") or {}).values() if isinstance(h, str)]
    while todo:
        oid = todo.pop()
        if oid in found or not objects.has(oid):
            continue
        data = objects.get_bytes(oid)
        found[oid] = data
        try:
            content = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        todo.extend(_hex_strings(content))
    return found


def _hex_strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj] if _HEX64.match(obj) else []
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _hex_strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _hex_strings(v)]
    return []


def export(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File (default: stdout).")] = None,
    filter_text: Annotated[
        str | None, typer.Option("--filter", "-f", help="Only these runs.")
    ] = None,
    no_objects: Annotated[
        bool, typer.Option("--no-objects", help="Leave out the manifest objects.")
    ] = False,
) -> None:
    """Export runs as JSON lines (with their manifests), for `ctui import` elsewhere."""
    from ctui.manifest.redact import redact_doc
    from ctui.objects import ObjectStore

    project = common.project()
    objects = ObjectStore(project.objects_dir)
    docs = select_runs(project, filter_text, "id", None)
    fh = out.open("wb") if out else sys.stdout.buffer
    try:
        for doc in docs:
            # the same redaction as everything ctui writes: a run stored by an older ctui
            # (a secret param, a credential its job printed) leaves without them
            record: dict[str, Any] = {"type": "run", "run": redact_doc(doc)}
            if not no_objects:
                record["objects"] = {
                    oid: base64.b64encode(data).decode()
                    for oid, data in _referenced_objects(objects, doc).items()
                }
            fh.write(orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n")
    finally:
        if out:
            fh.close()
    if out:
        common.err_console().print(f"exported {len(docs)} run(s) to {out}", markup=False)


def import_(
    source: Annotated[
        str,
        typer.Argument(
            help="A JSON lines file from `ctui export` ('-' = stdin), "
            "or `mlflow` to import from MLflow."
        ),
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite runs with the same id.")
    ] = False,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="MLflow experiment (with `mlflow`).")
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI (with `mlflow`; default: \\[mlflow] tracking_uri, else "
            "$MLFLOW_TRACKING_URI, else .ctui/mlflow.db).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="WHEN", help="With `mlflow`: " + SINCE_HELP),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="With `mlflow`: the counts as JSON.")
    ] = False,
) -> None:
    """Import runs from `ctui export` JSON lines, or from MLflow (`ctui import mlflow`).

    A file is imported whole or not at all: a line that is not a run ctui can hold (bad JSON,
    an id like `../x`, `"tags": "x"`) is named with its line number and nothing is imported."""
    project = common.project()
    if source == "mlflow":
        from ctui.cli.sync_cmds import run_import

        run_import(experiment, tracking_uri, since=since, as_json=as_json)
        return
    from ctui.objects import ObjectStore
    from ctui.store import Store

    if source != "-" and not Path(source).is_file():
        raise CtuiError(f"no such file: {source}", hint="pass a file written by `ctui export`")
    try:
        fh = sys.stdin.buffer if source == "-" else Path(source).open("rb")  # noqa: SIM115
        with fh:
            records = _read_export(fh, source)
    except OSError as exc:
        raise CtuiError(
            f"cannot read {source}: {exc.strerror or exc}", hint="nothing was imported"
        ) from None
    project.ensure()
    objects = ObjectStore(project.objects_dir)
    for _, blobs in records:
        for data in blobs:
            objects.put_bytes(data)
    n = Store(project.store_file).put_runs((doc for doc, _ in records), replace=replace)
    common.console().print(f"imported {n} run(s), {len(records) - n} already present")


_NOTHING = "nothing was imported; fix or remove that line and import again"


def _read_export(fh: Any, source: str) -> list[tuple[dict[str, Any], list[bytes]]]:
    """Every record of a `ctui export` file, checked before anything is written: one bad line
    (not JSON, a run id that is not one (`../x`), a field of the wrong type, an object that does
    not match its hash) refuses the whole file with that line's number, so nothing half-imports."""
    import binascii

    from ctui.ids import check_run_doc
    from ctui.objects import content_hash

    out = []
    for lineno, line in enumerate(fh, 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise CtuiError(f"{where}: not a ctui export record ({exc})", hint=_NOTHING) from None
        if not isinstance(record, dict) or "run" not in record:
            raise CtuiError(f'{where}: not a ctui export record (no "run")', hint=_NOTHING)
        if isinstance(record["run"], dict):  # its number in the project it came from:
            record["run"].pop("seq", None)  # this project numbers it anew (Store.put_runs)
        try:
            doc = check_run_doc(record["run"], where=where)
        except CtuiError as exc:
            raise CtuiError(exc.message, hint=_NOTHING) from None
        objects = record.get("objects") or {}
        if not isinstance(objects, dict):
            raise CtuiError(f'{where}: "objects" must be an object', hint=_NOTHING)
        blobs = []
        for oid, b64 in objects.items():
            try:
                data = base64.b64decode(b64, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise CtuiError(
                    f"{where}: object {oid[:12]} is not base64", hint=_NOTHING
                ) from None
            if content_hash(data) != oid:
                raise CtuiError(
                    f"{where}: object {oid[:12]} does not match its hash",
                    hint="the file is damaged; " + _NOTHING,
                )
            blobs.append(data)
        out.append((doc, blobs))
    return out
