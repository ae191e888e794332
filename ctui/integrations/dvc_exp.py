"""The experiment a `dvc exp run` job made: its name and its git ref (`refs/exps/…`).

DVC prints `Ran experiment(s): <name>` at the end of a workspace experiment; the name is
looked up among `refs/exps/<baseline>/<name>` (the one on HEAD's baseline first). With `-q`
DVC prints nothing, so the one experiment ref committed since the run started is taken.
No `import dvc`: the run's log and one `git for-each-ref`.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: how much of the end of the log is searched for DVC's closing lines
LOG_TAIL_BYTES = 256 * 1024
_RAN = re.compile(r"^Ran experiment\(s\):\s*(.+?)\s*$", re.MULTILINE)
_APPLIED = "Experiment results have been applied to your workspace."
#: refs under refs/exps/ that are DVC's own bookkeeping, not experiments
_INTERNAL = ("refs/exps/exec/", "refs/exps/celery/", "refs/exps/temp/")


def runs_exp_run(argv: Sequence[str]) -> bool:
    """Whether a command runs `dvc exp run` (`dvc exp run`, `python -m dvc exp run -S …`,
    `sh -c "dvc pull && dvc exp run"`)."""
    words = list(argv)
    for i, word in enumerate(words):
        name = word.rsplit("/", 1)[-1]
        if name == "dvc" or (name == "-m" and i + 1 < len(words) and words[i + 1] == "dvc"):
            rest = [w for w in words[i + (1 if name == "dvc" else 2) :] if not w.startswith("-")]
            if rest[:1] in (["exp"], ["experiments"]) and rest[1:2] == ["run"]:
                return True
        # a shell script given as one word: each command of it
        if " " in word and any(runs_exp_run(_split(p)) for p in _SHELL_SEP.split(word)):
            return True
    return False


_SHELL_SEP = re.compile(r"&&|\|\||[;|\n]")


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def names_in_log(log_path: Path) -> tuple[list[str], bool]:
    """(experiment names DVC said it ran, whether it applied them to the workspace)."""
    try:
        with open(log_path, "rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - LOG_TAIL_BYTES))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return [], False
    names: list[str] = []
    for match in _RAN.finditer(text):
        names.extend(n.strip() for n in match.group(1).split(",") if n.strip())
    return names, _APPLIED in text


def experiment_refs(cwd: Path) -> list[tuple[str, int]]:
    """(ref, commit time) of every experiment ref; empty outside git."""
    try:
        proc = subprocess.run(
            ["git", "for-each-ref", "--format=%(refname) %(creatordate:unix)", "refs/exps/"],
            cwd=cwd, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return []
    if proc.returncode != 0:
        return []
    out = []
    for line in proc.stdout.splitlines():
        ref, _, when = line.rpartition(" ")
        if ref and not ref.startswith(_INTERNAL) and when.isdigit():
            out.append((ref, int(when)))
    return out


def _head(cwd: Path) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def experiment(
    cwd: Path, log_path: Path, argv: Sequence[str], *, since: float | None = None
) -> dict[str, Any] | None:
    """`{"name", "ref"}` (and `applied`) of the experiment a `dvc exp run` run made; None
    when the command is not `dvc exp run` or no experiment can be told apart."""
    if not runs_exp_run(argv):
        return None
    cwd = Path(cwd)
    names, applied = names_in_log(Path(log_path))
    refs = experiment_refs(cwd)
    if names:
        name = names[-1]
        matching = [r for r, _t in refs if r.rsplit("/", 1)[-1] == name]
        head = _head(cwd) if len(matching) > 1 else None
        on_head = [r for r in matching if head and f"/{head[:2]}/{head[2:]}/" in r]
        ref: str | None = (on_head or matching)[-1] if matching else None
    else:
        # `-q`: no closing line; the one experiment committed since the run started
        new = [r for r, t in refs if since is not None and t >= int(since)]
        if len(new) != 1:
            return None
        ref = new[0]
        name = ref.rsplit("/", 1)[-1]
    found: dict[str, Any] = {"name": name, "ref": ref}
    if len(names) > 1:
        found["names"] = names
    if applied:
        found["applied"] = True
    return found
