"""Run manifests: what a run was made of (data, code, env, compute), captured fast.

A manifest is a plain dict::

    {"schema": 1, "captured_at": "2026-11-27T04:00:00+00:00", "root": "/path/to/project",
     "sections": {name: {"status": "ok" | "absent", "reason": str | None, "hash": str, ...}},
     "blobs": {object_id: bytes}}          # the uncommitted git patch, outside any section

Each section's `hash` is `json_hash` of the section without its `hash` key, so it covers only
stable content (no timestamps, no free disk space): two captures of an unchanged box hash
equal, and the section stored by `save` gets exactly that hash as its object id.
A section that cannot be captured is `status: "absent"` with the reason, never a crash.
"""

from __future__ import annotations

import base64
import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError
from ctui.objects import json_hash

if TYPE_CHECKING:
    from ctui.config import ManifestConfig
    from ctui.objects import ObjectStore

SCHEMA = 1
SECTIONS: tuple[str, ...] = ("data", "code", "env", "compute")


class Absent(Exception):
    """Raised by a section capturer when the section cannot exist here; the text is the reason."""


def finish_section(content: dict[str, Any]) -> dict[str, Any]:
    """Give a captured section its status and hash (hash over everything but `hash`)."""
    section = {"status": "ok", "reason": None, **content}
    section.pop("hash", None)
    section["hash"] = json_hash(section)
    return section


def absent_section(reason: str) -> dict[str, Any]:
    return finish_section({"status": "absent", "reason": reason})


def section_hash(section: Mapping[str, Any]) -> str:
    """Recompute a section's hash from its content (to verify a stored or edited section)."""
    return json_hash({k: v for k, v in section.items() if k != "hash"})


def capture(
    root: Path,
    *,
    sections: Sequence[str] = SECTIONS,
    data_paths: Sequence[str] = (),
    cache_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    python: Callable[[], dict[str, Any]] | None = None,
    options: ManifestConfig | None = None,
) -> dict[str, Any]:
    """Capture the manifest of the project at `root`.

    `data_paths`: extra data files/folders a job declares (relative to `root`), hashed with a
    size+mtime cache kept in `cache_dir` (no cache when None). `env`: the environment the job
    will see (default: `os.environ`); only allow-listed variables are kept, secrets redacted.
    `python`: returns the job's interpreter as `ctui.manifest.interpreter.describe` does (raises
    `Absent` when there is none); default: the `python3` on `env`'s PATH. `options`: the
    project's `[manifest]` settings (extra variables, untracked files to capture).
    """
    from ctui.config import ManifestConfig

    opts = options or ManifestConfig()
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise CtuiError(
            f"unknown manifest section(s): {', '.join(unknown)}",
            hint=f"choose from {', '.join(SECTIONS)}",
        )
    root = Path(root).resolve()
    blobs: dict[str, bytes] = {}
    capturers: dict[str, Callable[[], dict[str, Any]]] = {
        "data": lambda: _data().capture_data(root, data_paths=data_paths, cache_dir=cache_dir),
        "code": lambda: _code().capture_code(
            root, blobs=blobs, untracked=opts.untracked, max_bytes=opts.untracked_max_bytes
        ),
        "env": lambda: _env().capture_env(env, python=python, cache_dir=cache_dir, options=opts),
        "compute": lambda: _compute().capture_compute(root),
    }
    out: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        if name not in sections:
            continue
        try:
            out[name] = finish_section(capturers[name]())
        except Absent as exc:
            out[name] = absent_section(str(exc))
    return {
        "schema": SCHEMA,
        "captured_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "root": str(root),
        "sections": out,
        "blobs": blobs,
    }


def save(objects: ObjectStore, manifest: Mapping[str, Any]) -> dict[str, str]:
    """Store each section as one object whose id is the section hash; returns section → hash.

    Identical sections (same hash) are stored once. The blobs (uncommitted patches) are
    stored as bytes objects; the code section refers to them by object id.
    """
    for data in manifest.get("blobs", {}).values():
        objects.put_bytes(blob_bytes(data))
    hashes: dict[str, str] = {}
    for name, section in manifest["sections"].items():
        body = {k: v for k, v in section.items() if k != "hash"}
        oid = objects.put_json(body)
        hashes[name] = oid
    return hashes


def load(objects: ObjectStore, hashes: Mapping[str, str]) -> dict[str, Any]:
    """Rebuild a manifest from stored section hashes (as kept in a run's `manifest` field).

    Patches are not read here; fetch them by id with `objects.get_bytes` when needed.
    """
    sections = {}
    for name, oid in hashes.items():
        section = dict(objects.get_json(oid))
        section["hash"] = oid
        sections[name] = section
    return {"schema": SCHEMA, "captured_at": None, "root": None, "sections": sections, "blobs": {}}


# -- JSON form (`ctui manifest --json` writes it; `ctui diff FILE` reads it back) -------------


def to_json(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest as JSON-safe data: blobs become {"encoding": "utf-8"|"base64", "data"}."""
    doc = dict(manifest)
    doc["blobs"] = {oid: _encode_blob(b) for oid, b in manifest.get("blobs", {}).items()}
    return doc


def from_json(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of `to_json`; checks the shape so a wrong file gives a clear error."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("sections"), Mapping):
        raise CtuiError(
            "not a ctui manifest: expected an object with a 'sections' object",
            hint="write one with `ctui manifest --json > FILE`",
        )
    out = dict(doc)
    out["blobs"] = {oid: blob_bytes(b) for oid, b in (doc.get("blobs") or {}).items()}
    return out


def blob_bytes(blob: Any) -> bytes:
    if isinstance(blob, bytes):
        return blob
    if isinstance(blob, Mapping):
        if blob.get("encoding") == "base64":
            return base64.b64decode(blob.get("data", ""))
        return str(blob.get("data", "")).encode()
    return str(blob).encode()


def _encode_blob(data: bytes) -> dict[str, str]:
    try:
        return {"encoding": "utf-8", "data": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "data": base64.b64encode(data).decode("ascii")}


# Section modules are imported on use so `import ctui.manifest` stays cheap.
def _data() -> Any:
    from ctui.manifest import data

    return data


def _code() -> Any:
    from ctui.manifest import code

    return code


def _env() -> Any:
    from ctui.manifest import env

    return env


def _compute() -> Any:
    from ctui.manifest import compute

    return compute


__all__ = [
    "SECTIONS",
    "Absent",
    "capture",
    "save",
    "load",
    "to_json",
    "from_json",
    "section_hash",
]
