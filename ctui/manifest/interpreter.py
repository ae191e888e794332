"""The job's own interpreter: which Python a job runs with, and what is installed in it.

ctui is often installed as a tool in its own environment while jobs run in the project's
venv, so ctui's `sys.executable` says nothing about a job. Here the interpreter is *resolved*
from the job's command and PATH (`resolve`), then *asked* (`probe`): a tiny stdlib script run
by that interpreter prints its version, prefix, `sys.path` and installed distributions. The
answer is cached on the interpreter's path and the mtimes of the folders on its `sys.path`,
so an unchanged env costs a few `stat` calls; installing or upgrading a package changes its
site-packages folder's mtime and so the next capture probes again.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ctui.atomic import atomic_write_bytes
from ctui.manifest import Absent

CACHE_FILE = "interpreters.json"
PROBE_TIMEOUT = 60.0
#: `python`, `python3`, `python3.12`, `pypy3`, `python3.13t`
_PYTHON_NAME = re.compile(r"^(python|pypy)(\d+(\.\d+)*t?)?$")
#: variables that change what a Python's `sys.path` holds (part of the cache key)
_PATH_VARS = ("PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONUSERBASE", "PYTHONSAFEPATH")

#: the probe, run by the job's interpreter as `-c` (see `ctui/manifest/probe.py`)
PROBE = (Path(__file__).with_name("probe.py")).read_text()


class NoPython(Absent):
    """A command that is not Python, where no Python is there to ask either (a shell script
    in a busybox image): the env section records the rest (OS, container, variables)."""


@dataclass
class Resolved:
    """An interpreter to ask: `argv` runs it (a path, or a `docker run …` prefix)."""

    argv: list[str]
    #: how it was chosen, in words ("the command's interpreter", "python on the job's PATH …")
    how: str
    #: cache key part naming it; None = do not cache (cannot be stamped)
    key: str | None = None


def is_python_name(token: str) -> bool:
    return bool(_PYTHON_NAME.match(os.path.basename(token)))


def _which(name: str, env: Mapping[str, str], cwd: Path) -> str | None:
    if "/" in name:
        path = Path(name) if os.path.isabs(name) else cwd / name
        return str(path) if path.exists() else None
    return shutil.which(name, path=env.get("PATH", os.defpath))


def _path_python(env: Mapping[str, str], cwd: Path) -> str | None:
    return _which("python3", env, cwd) or _which("python", env, cwd)


def command_words(argv: Sequence[str], shell: bool = False) -> list[str]:
    """The command's words; for `sh -c "…"` the words of the script (best effort)."""
    words = list(argv)
    if shell and len(words) >= 3 and words[1] == "-c":
        try:
            words = shlex.split(words[2])
        except ValueError:
            return []
    # `env A=1 python …` and `nice python …` run the named program
    while words and (
        os.path.basename(words[0]) in ("env", "nice", "nohup", "exec")
        or ("=" in words[0] and not words[0].startswith("-") and "/" not in words[0].split("=")[0])
    ):
        words = words[1:]
    return words


def resolve(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    *,
    configured: str | None = None,
    bases: Sequence[Path] = (),
    shell: bool = False,
) -> Resolved:
    """Which Python the job runs with. Raises Absent (with the reason) when there is none.

    In order: the job's `python` setting (a path, relative to `bases` then `cwd`, or a name on
    the job's PATH); the command's own interpreter (`python …`, `/venv/bin/python …`,
    `{python}`); `uv run …` → the project's `.venv`; a `*.py` script → its `#!` line; anything
    else (`dvc repro`, a shell script) → the `python3` its PATH would give, said so.
    """
    if configured:
        found = None
        if "/" in configured and not os.path.isabs(configured):
            for base in (*bases, cwd):
                if (base / configured).exists():
                    found = str(base / configured)
                    break
        else:
            found = _which(configured, env, cwd)
        if found is None:
            raise Absent(f"the job's python {configured!r} does not exist")
        return _local(found, "the job's python setting")
    words = command_words(argv, shell)
    if not words:
        raise Absent("the job's command is empty")
    first = words[0]
    if is_python_name(first):
        found = _which(first, env, cwd)
        if found is None:
            raise Absent(f"the job's interpreter {first!r} is not on the job's PATH")
        return _local(found, "the command's interpreter")
    if os.path.basename(first) == "uv" and len(words) > 1 and words[1] == "run":
        venv = env.get("UV_PROJECT_ENVIRONMENT") or ".venv"
        for base in (cwd, *bases):
            candidate = Path(venv) if os.path.isabs(venv) else base / venv
            if (candidate / "bin" / "python").exists():
                return _local(str(candidate / "bin" / "python"), "uv run: the project's venv")
    if first.endswith(".py"):
        script = _which(first, env, cwd)
        shebang = _shebang(Path(script)) if script else None
        if shebang:
            found = _which(shebang, env, cwd)
            if found:
                return _local(found, f"the #! line of {os.path.basename(first)}")
    found = _path_python(env, cwd)
    if found is None:
        raise NoPython(
            f"the command {os.path.basename(first)!r} is not Python and no python3 is on its PATH"
        )
    return _local(
        found, f"python3 on the job's PATH (the command {os.path.basename(first)!r} is not Python)"
    )


def _local(path: str, how: str) -> Resolved:
    return Resolved(argv=[path], how=how, key=f"local:{os.path.abspath(path)}")


def _shebang(script: Path) -> str | None:
    """The interpreter a `#!` line names: `/usr/bin/env python3` → `python3`."""
    try:
        with open(script, "rb") as fh:
            line = fh.readline(256).decode("utf-8", "replace")
    except OSError:
        return None
    if not line.startswith("#!"):
        return None
    parts = line[2:].split()
    if not parts:
        return None
    if os.path.basename(parts[0]) == "env":
        rest = [p for p in parts[1:] if not p.startswith("-")]
        return rest[0] if rest and is_python_name(rest[0]) else None
    return parts[0] if is_python_name(parts[0]) else None


# -- asking the interpreter ------------------------------------------------------------------


def probe(
    interp: Resolved,
    env: Mapping[str, str],
    cwd: Path,
    *,
    cache_dir: Path | None = None,
    run: Callable[[list[str]], tuple[int, bytes, bytes]] | None = None,
) -> dict[str, Any]:
    """What the interpreter reports about itself (see PROBE), cached when it can be stamped.

    `run(argv) -> (returncode, stdout, stderr)` runs the probe (default: a subprocess in
    `cwd` with `env`); a container backend passes its own. Raises Absent when it is not Python.
    """
    key = None
    if interp.key is not None:
        extra = "\0".join(f"{v}={env.get(v, '')}" for v in _PATH_VARS)
        key = f"{interp.key}\0{extra}"
    cache = _Cache(cache_dir)
    if key is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    argv = [*interp.argv, "-c", PROBE]
    if run is None:
        code, out, err = _run_local(argv, env, cwd)
    else:
        code, out, err = run(argv)
    what = " ".join(interp.argv)
    if code != 0:
        said = err.decode(errors="replace").strip().splitlines()
        raise Absent(f"{what} is not a working Python: {said[-1] if said else f'exit {code}'}")
    try:
        info = orjson.loads(out.strip().splitlines()[-1])
    except (orjson.JSONDecodeError, IndexError):
        raise Absent(f"{what} is not a Python interpreter (it printed no probe answer)") from None
    if not isinstance(info, dict) or "version" not in info:
        raise Absent(f"{what} gave an answer ctui cannot read")
    if key is not None:
        cache.put(key, info)
    return info


def _run_local(argv: list[str], env: Mapping[str, str], cwd: Path) -> tuple[int, bytes, bytes]:
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd if cwd.is_dir() else None,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PROBE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise Absent(f"{argv[0]} did not answer the probe in {PROBE_TIMEOUT:g} s") from None
    except OSError as exc:
        raise Absent(f"{argv[0]} cannot be run: {exc.strerror or exc}") from None
    return proc.returncode, proc.stdout, proc.stderr


def _stamp(info: Mapping[str, Any], interp_key: str) -> list[Any]:
    """What must be unchanged for a cached answer to hold: the interpreter file itself and
    every folder on its sys.path (a package install adds or removes a `*.dist-info` there)."""
    if not interp_key.startswith("local:"):
        return ["immutable"]  # an image id names its content: the answer never goes stale
    out: list[Any] = []
    paths = [info.get("executable") or ""]
    paths.append(interp_key[len("local:") :])
    for p in [*paths, *(info.get("path") or [])]:
        try:
            st = os.stat(p)
            out.append([p, st.st_mtime_ns, st.st_size, st.st_ino])
        except OSError:
            out.append([p, None])
    return out


class _Cache:
    """`interpreters.json`: key → [stamp, info]. A lost update between writers costs a probe."""

    def __init__(self, cache_dir: Path | None):
        self.file = Path(cache_dir) / CACHE_FILE if cache_dir else None
        self.data: dict[str, Any] = {}
        if self.file is not None:
            with contextlib.suppress(OSError, orjson.JSONDecodeError):
                loaded = orjson.loads(self.file.read_bytes())
                if isinstance(loaded, dict):
                    self.data = loaded

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self.data.get(key)
        if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[1], dict):
            return None
        stamp, info = entry
        return info if stamp == _stamp(info, key.split("\0", 1)[0]) else None

    def put(self, key: str, info: dict[str, Any]) -> None:
        if self.file is None:
            return
        self.data[key] = [_stamp(info, key.split("\0", 1)[0]), info]
        with contextlib.suppress(OSError):
            self.file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.file, orjson.dumps(self.data))


def describe(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    *,
    configured: str | None = None,
    bases: Sequence[Path] = (),
    shell: bool = False,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """`resolve` + `probe`: the job's interpreter as the env section records it."""
    interp = resolve(argv, env, cwd, configured=configured, bases=bases, shell=shell)
    info = dict(probe(interp, env, cwd, cache_dir=cache_dir))
    info["how"] = interp.how
    return info
