"""The code section: commit, branch, remote (credentials stripped), dirty flag, the
uncommitted patch (stored as its own object) and untracked files — in at most four git calls.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ctui.manifest import Absent
from ctui.manifest.redact import redact_bytes, redact_text, strip_url_credentials

#: ctui's own state never makes a tree dirty
IGNORED_PREFIXES = (".ctui/",)
#: more untracked entries than this are counted, not listed
MAX_UNTRACKED = 500


def _git(root: Path, *args: str, check: bool = True) -> bytes:
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise Absent("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise Absent(f"git {args[0]} timed out") from None
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise Absent(err[-1] if err else f"git {args[0]} failed ({proc.returncode})")
    return proc.stdout


def capture_code(
    root: Path,
    *,
    blobs: dict[str, bytes],
    untracked: Sequence[str] = ("*.py",),
    max_bytes: int = 256 * 1024,
) -> dict[str, Any]:
    # one call: commit, branch, upstream, changed and untracked entries
    status = _git(
        root, "-c", "core.quotepath=off", "status", "--porcelain=v2", "--branch", "-z",
        "--untracked-files=normal", "--ignore-submodules=dirty",
    )  # fmt: skip
    info = parse_status(status)
    if info["commit"] is None:
        raise Absent(f"git repository at {root} has no commits yet")
    remotes = _remotes(root)
    out: dict[str, Any] = {
        "commit": info["commit"],
        "branch": info["branch"],
        "upstream": info["upstream"],
        "remote": remotes.get("origin") or next(iter(remotes.values()), None),
        "remotes": remotes,
        "dirty": bool(info["changed"]),
        "changed_files": info["changed"],
        "untracked": info["untracked"][:MAX_UNTRACKED],
        "untracked_count": len(info["untracked"]),
        "patch": None,
    }
    if info["changed"]:
        # the whole repository's change (also when the project is a subfolder), minus ctui state
        raw = _git(root, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--",
                   ":/", *(f":(top,exclude,glob)**/{p}**" for p in IGNORED_PREFIXES))  # fmt: skip
        if raw:
            patch, redactions = redact_bytes(raw)
            oid = hashlib.sha256(patch).hexdigest()
            blobs[oid] = patch
            out["patch"] = {"id": oid, "size": len(patch), "redactions": redactions}
    return out


def parse_status(raw: bytes) -> dict[str, Any]:
    """Parse `git status --porcelain=v2 --branch -z`."""
    commit = branch = upstream = None
    changed: list[str] = []
    untracked: list[str] = []
    entries = raw.decode("utf-8", "surrogateescape").split("\0")
    i = 0
    while i < len(entries):
        e = entries[i]
        i += 1
        if not e:
            continue
        if e.startswith("# branch.oid "):
            oid = e[len("# branch.oid ") :]
            commit = None if oid == "(initial)" else oid
        elif e.startswith("# branch.head "):
            head = e[len("# branch.head ") :]
            branch = None if head == "(detached)" else head
        elif e.startswith("# branch.upstream "):
            upstream = e[len("# branch.upstream ") :]
        elif e.startswith("1 "):
            changed.append(e.split(" ", 8)[8])
        elif e.startswith("2 "):
            changed.append(e.split(" ", 9)[9])
            i += 1  # the rename's original path follows as its own entry
        elif e.startswith("u "):
            changed.append(e.split(" ", 10)[10])
        elif e.startswith("? "):
            untracked.append(e[2:])
    keep = [p for p in changed if not _ignored(p)]
    extra = [p for p in untracked if not _ignored(p)]
    return {
        "commit": commit,
        "branch": branch,
        "upstream": upstream,
        "changed": sorted(keep),
        "untracked": sorted(extra),
    }


def _ignored(path: str) -> bool:
    """ctui's state folder at any depth (the project may be a subfolder of the repository)."""
    padded = "/" + path
    return any(f"/{p}" in padded for p in IGNORED_PREFIXES)


def _remotes(root: Path) -> dict[str, str]:
    raw = _git(root, "config", "--get-regexp", r"^remote\..*\.url$", check=False)
    out: dict[str, str] = {}
    for line in raw.decode(errors="replace").splitlines():
        key, _, url = line.partition(" ")
        name = key[len("remote.") : -len(".url")]
        out[name] = redact_text(strip_url_credentials(url.strip()))
    return out
