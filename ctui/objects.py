"""Content-addressed object store under `.ctui/objects/`: identical content is stored once."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

from ctui.atomic import atomic_write_bytes
from ctui.errors import StoreCorruptError


def canonical_json(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_hash(obj: Any) -> str:
    """The hash a section gets: sha256 of its canonical JSON."""
    return content_hash(canonical_json(obj))


class ObjectStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, oid: str) -> Path:
        return self.root / oid[:2] / oid[2:]

    def has(self, oid: str) -> bool:
        return self.path(oid).exists()

    def put_bytes(self, data: bytes) -> str:
        oid = content_hash(data)
        p = self.path(oid)
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(p, data)
        return oid

    def get_bytes(self, oid: str) -> bytes:
        try:
            return self.path(oid).read_bytes()
        except FileNotFoundError:
            raise StoreCorruptError(
                f"object {oid[:12]} is missing from {self.root}",
                hint="the run refers to a manifest that was deleted; `ctui doctor` lists such runs",
            ) from None

    def put_json(self, obj: Any) -> str:
        return self.put_bytes(canonical_json(obj))

    def get_json(self, oid: str) -> Any:
        data = self.get_bytes(oid)
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise StoreCorruptError(f"object {self.path(oid)} is not valid JSON: {exc}") from None

    def all_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return [
            p.parent.name + p.name for p in self.root.glob("??/*") if not p.name.startswith(".")
        ]
