"""The code section: commit, branch, remote (credentials stripped), dirty flag, the
uncommitted patch (stored as its own object), submodules and untracked files.

A repository without submodules and without untracked source files costs three git calls
(status, remotes, diff when dirty). Submodules (only read when `.gitmodules` exists) cost two
more per repository that has them, plus one status (and one diff when dirty) per submodule
that is changed or has submodules of its own. Untracked files matching the patterns are read
from disk, never through git.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ctui.manifest import Absent
from ctui.manifest.redact import redact_bytes, redact_text, strip_url_credentials

#: ctui's own state never makes a tree dirty
IGNORED_PREFIXES = (".ctui/",)
#: untracked folders that hold an environment or caches, not the project's code: never listed
#: or captured (an un-ignored `venv/` would otherwise put pip's sources in every record; the
#: env section describes what is installed there)
ENV_DIRS = frozenset({".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__",
                      ".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages"})  # fmt: skip
#: more untracked entries than this are counted, not listed (and at most this many captured)
MAX_UNTRACKED = 500
#: captured untracked files stop at this many bytes in all
MAX_UNTRACKED_TOTAL = 16 * 1024 * 1024
#: at most this many untracked files are captured (each is read and redacted)
MAX_CAPTURED = 200
#: a file with a NUL byte in its first this-many bytes is binary
BINARY_SNIFF = 8192
#: the gitlink mode: a submodule's entry in its superproject's tree
GITLINK = "160000"


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


def _status(root: Path, untracked: str) -> dict[str, Any]:
    # one call: commit, branch, upstream, changed and untracked entries, submodule states
    # (a submodule with a new commit or tracked changes is changed; untracked files in it
    # are not: they are not code the superproject records)
    return parse_status(
        _git(
            root,
            "-c",
            "core.quotepath=off",
            "status",
            "--porcelain=v2",
            "--branch",
            "-z",
            f"--untracked-files={untracked}",
            "--ignore-submodules=untracked",
        )  # fmt: skip
    )


def _diff(root: Path, *pathspec: str) -> bytes:
    # a submodule's own changes are in its own patch, so only its commit is in this one
    return _git(root, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff",
                "--ignore-submodules=dirty", "--", *pathspec)  # fmt: skip


def _store_patch(raw: bytes, blobs: dict[str, bytes]) -> dict[str, Any] | None:
    if not raw:
        return None
    patch, redactions = redact_bytes(raw)
    oid = hashlib.sha256(patch).hexdigest()
    blobs[oid] = patch
    return {"id": oid, "size": len(patch), "redactions": redactions}


def capture_code(
    root: Path,
    *,
    blobs: dict[str, bytes],
    untracked: Sequence[str] = ("*.py",),
    max_bytes: int = 256 * 1024,
) -> dict[str, Any]:
    """The code section of the repository holding `root`; patches and captured untracked
    files go into `blobs` (object id → bytes).

    `untracked`: patterns (fnmatch, on the path from the repository top and on the file
    name) of untracked files whose content is captured, each at most `max_bytes` and not
    binary; the others are only listed, and the skipped ones say why.
    """
    info = _status(root, "all")
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
        raw = _diff(root, ":/", *(f":(top,exclude,glob)**/{p}**" for p in IGNORED_PREFIXES))
        out["patch"] = _store_patch(raw, blobs)
    top = repo_top(root)
    if (top / ".gitmodules").is_file():
        out["submodules"] = _submodules(top, "", info["submodules"], blobs)
    if untracked and info["untracked"]:
        files, skipped = _capture_untracked(top, info["untracked"], untracked, max_bytes, blobs)
        if files:
            out["untracked_files"] = files
        if skipped:
            out["untracked_skipped"] = skipped
    return out


def repo_top(root: Path) -> Path:
    """The top of the work tree holding `root`: the nearest folder upwards with a `.git`
    (a folder, or a file in worktrees and submodules) — no git call."""
    here = Path(root).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    top = _git(root, "rev-parse", "--show-toplevel").decode().strip()
    return Path(top)


# -- submodules ------------------------------------------------------------------------------


def _submodules(
    repo: Path, prefix: str, changed: dict[str, str], blobs: dict[str, bytes]
) -> dict[str, dict[str, Any]]:
    """Every submodule of the repository at `repo` (its top), nested ones included, keyed by
    the path from the outermost top (`prefix` + path): the commit checked out, the commit the
    superproject's HEAD records, dirty, its own patch, and whether it is initialised (checked
    out). `changed`: path → status flags of the submodules `git status` reported as changed
    (the others are at their recorded commit, clean)."""
    paths = _gitmodule_paths(repo)
    if not paths:
        return {}
    recorded = _recorded_commits(repo, paths)
    out: dict[str, dict[str, Any]] = {}
    for rel in paths:
        where = repo / rel
        entry: dict[str, Any] = {
            "commit": None,
            "recorded": recorded.get(rel),
            "dirty": False,
            "patch": None,
            "initialised": (where / ".git").exists(),
        }
        out[prefix + rel] = entry
        if not entry["initialised"]:
            continue
        if rel not in changed and not (where / ".gitmodules").is_file():
            entry["commit"] = entry["recorded"]  # HEAD, index and checkout agree
            continue
        try:
            info = _status(where, "no")
        except Absent as exc:  # a broken submodule checkout is recorded, not fatal
            entry["initialised"] = False
            entry["problem"] = str(exc)
            continue
        entry["commit"] = info["commit"]
        entry["dirty"] = bool(info["changed"])
        if info["changed"]:
            entry["patch"] = _store_patch(_diff(where), blobs)
        if (where / ".gitmodules").is_file():
            out.update(_submodules(where, f"{prefix}{rel}/", info["submodules"], blobs))
    return out


def _gitmodule_paths(repo: Path) -> list[str]:
    raw = _git(repo, "config", "-z", "-f", ".gitmodules", "--get-regexp", r"^submodule\..*\.path$",
               check=False)  # fmt: skip
    paths = set()
    for item in raw.decode("utf-8", "surrogateescape").split("\0"):
        _key, _, path = item.partition("\n")
        path = path.strip().strip("/")
        if path and not _ignored(path):
            paths.add(path)
    return sorted(paths)


def _recorded_commits(repo: Path, paths: list[str]) -> dict[str, str]:
    """path → the commit the superproject's HEAD records for each submodule path."""
    raw = _git(repo, "--literal-pathspecs", "ls-tree", "-z", "HEAD", "--", *paths, check=False)
    out = {}
    for item in raw.decode("utf-8", "surrogateescape").split("\0"):
        meta, _, path = item.partition("\t")
        fields = meta.split()
        if len(fields) == 3 and fields[0] == GITLINK:
            out[path] = fields[2]
    return out


# -- untracked files -------------------------------------------------------------------------


def _capture_untracked(
    top: Path,
    paths: Sequence[str],
    patterns: Sequence[str],
    max_bytes: int,
    blobs: dict[str, bytes],
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(captured path → {id, size[, exec][, redactions]}, skipped path → why) for the untracked
    files matching `patterns`, in path order, both bounded."""
    files: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    total = 0
    for rel in paths:
        if rel.endswith("/") or not _matches(rel, patterns):
            continue  # a folder here is a nested repository, not a file
        if len(skipped) >= MAX_UNTRACKED:
            break
        why, data, mode = _read_small_text(top / rel, max_bytes)
        if data is not None and (
            len(files) >= MAX_CAPTURED or total + len(data) > MAX_UNTRACKED_TOTAL
        ):
            why = "over the capture limit"
        if why or data is None:
            if why:
                skipped[rel] = why
            continue
        content, redactions = redact_bytes(data)
        oid = hashlib.sha256(content).hexdigest()
        blobs[oid] = content
        total += len(content)
        entry: dict[str, Any] = {"id": oid, "size": len(content)}
        if mode & stat.S_IXUSR:
            entry["exec"] = True
        if redactions:
            entry["redactions"] = redactions
        files[rel] = entry
    return files, skipped


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatchcase(rel, p) or fnmatchcase(name, p) for p in patterns)


def _read_small_text(path: Path, max_bytes: int) -> tuple[str | None, bytes | None, int]:
    """(why it is skipped or None, its bytes or None, its mode); a file gone since git listed
    it is neither."""
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode):
            return "not a regular file", None, 0
        if st.st_size > max_bytes:
            return "too big", None, st.st_mode
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        return None, None, 0
    except OSError as exc:
        return f"unreadable ({os.strerror(exc.errno or 0) or exc})", None, 0
    if len(data) > max_bytes:
        return "too big", None, st.st_mode
    if b"\0" in data[:BINARY_SNIFF]:
        return "binary", None, st.st_mode
    return None, data, st.st_mode


# -- status ----------------------------------------------------------------------------------


def parse_status(raw: bytes) -> dict[str, Any]:
    """Parse `git status --porcelain=v2 --branch -z`.

    `submodules`: path → the `S<c><m><u>` flags of each submodule reported as changed.
    """
    commit = branch = upstream = None
    changed: list[str] = []
    untracked: list[str] = []
    submodules: dict[str, str] = {}
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
            fields = e.split(" ", 8)
            changed.append(fields[8])
            if fields[2].startswith("S"):
                submodules[fields[8]] = fields[2]
        elif e.startswith("2 "):
            fields = e.split(" ", 9)
            changed.append(fields[9])
            if fields[2].startswith("S"):
                submodules[fields[9]] = fields[2]
            i += 1  # the rename's original path follows as its own entry
        elif e.startswith("u "):
            changed.append(e.split(" ", 10)[10])
        elif e.startswith("? "):
            untracked.append(e[2:])
    keep = [p for p in changed if not _ignored(p)]
    extra = [p for p in untracked if not _ignored(p) and not _environment(p)]
    return {
        "commit": commit,
        "branch": branch,
        "upstream": upstream,
        "changed": sorted(keep),
        "untracked": sorted(extra),
        "submodules": submodules,
    }


def _environment(path: str) -> bool:
    return any(part in ENV_DIRS for part in path.rstrip("/").split("/"))


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
