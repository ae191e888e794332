"""Reproduce, step 4a: make a DVC pipeline really run again, every stage executed.

Left to itself, `dvc repro` in the rebuilt worktree does no work: the data checkout put the
recorded outputs there, so each stage "didn't change, skipping" (`Stage.reproduce` in
dvc/stage/__init__.py returns early `elif not self.changed(...)`); and a stage whose outputs
are missing is still not run when the cache holds them — `run_stage` (dvc/stage/run.py) first
calls `stage_cache.restore` `if not force`, which checks the outputs out of the lock's record
or the run-cache ("Stage 'x' is cached - skipping run", dvc/stage/cache.py). `--no-run-cache`
alone does not stop that: `restore` still uses the lock's record when the stage is unchanged.

- A command that *is* `dvc repro …` or `dvc exp run …` (`python -m dvc`, `uv run dvc` too)
  gets `--force`: `force` skips both `Stage.changed()` and the cache restore, so every planned
  stage runs its command (`dvc exp run` takes the same repro flags, dvc/commands/experiments/
  run.py, and passes `force` on to `reproduce`).
- Any other command that runs dvc (a shell string, a script calling `dvc repro`) is out of
  reach of argv. The worktree then gets a DVC cache of its own (`cache.dir` in its
  `.dvc/config.local`, set after the data checkout) holding only the raw inputs, and the stage
  outputs are removed: an output that is neither in the workspace nor in the cache can only be
  made by running the stage (`Output.status()` says "not in cache"; `restore` finds nothing).
  Frozen stages keep their outputs: DVC verifies them and never runs them. Outputs git tracks
  (a `cache: false` metrics file) are marked skip-worktree in the worktree's own index first,
  so their removal is not recorded as a change to the code.

Either way the reproduction's log is read afterwards (`compare.dvc_stages`): a stage that was
still skipped or restored makes the verdict "not verified", never "reproduced".
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctui.errors import CtuiError

if TYPE_CHECKING:
    from ctui.config import Config

#: DVC's global options that take a value (`dvc --cd sub repro`)
_GLOBAL_WITH_VALUE = {"--cd"}


@dataclass
class Pipeline:
    """What the worktree's dvc.yaml files declare (paths relative to the project folder)."""

    #: stage addresses in declaration order ("train", "sub/dvc.yaml:train")
    stages: list[str] = field(default_factory=list)
    #: every out (outs, metrics, plots) → (stage index, kind)
    outs: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: outs of frozen stages: DVC never runs those stages, their outputs must stay
    frozen: set[str] = field(default_factory=set)
    #: frozen stages as `folder:name` ("" for the top folder), the way sources name them
    frozen_stages: set[str] = field(default_factory=set)

    def order(self) -> list[str]:
        """Outputs as a person names them: the products of the last stages first (the model
        before the features it was trained on), metrics and plots after (the metrics are
        compared on their own)."""
        return sorted(self.outs, key=lambda p: (self.outs[p][1] != "outs", -self.outs[p][0], p))


def read_pipeline(here: Path, commit: str) -> Pipeline:
    """The stages of every dvc.yaml under `here`; a file that cannot be read is bad input
    (exit 2): the recorded pipeline cannot be rebuilt."""
    import yaml

    from ctui.manifest.data import find_dvc_files

    pipe = Pipeline()
    yaml_files, _locks, _dvcs = find_dvc_files(here)
    for rel in yaml_files:
        base = rel.rsplit("/", 1)[0] if "/" in rel else ""
        where = f"{rel} at {commit[:7]}"
        try:
            doc = yaml.safe_load((here / rel).read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise CtuiError(
                f"{where} cannot be read: {_yaml_reason(exc)}",
                hint="the pipeline at the recorded commit is broken; fix it in a new commit "
                "and run again, a run of a broken pipeline cannot be rebuilt",
            ) from None
        stages = (doc or {}).get("stages", {}) if isinstance(doc, dict) or doc is None else None
        if not isinstance(stages, dict) or any(not isinstance(b, dict) for b in stages.values()):
            raise CtuiError(
                f"{where} cannot be read: 'stages' is not a mapping of stage names to stages",
                hint="the pipeline at the recorded commit is broken; a run of it cannot be rebuilt",
            )
        for name, body in stages.items():
            address = str(name) if not base else f"{rel}:{name}"
            index = len(pipe.stages)
            pipe.stages.append(address)
            frozen = bool(body.get("frozen"))
            if frozen:
                pipe.frozen_stages.add(f"{base}:{name}")
            if "foreach" in body or "matrix" in body:
                continue  # expanded by DVC; its outs are in dvc.lock and the recorded section
            wdir = str(body.get("wdir") or ".")
            for kind in ("outs", "metrics", "plots"):
                for item in body.get(kind) or []:
                    out = next(iter(item), None) if isinstance(item, dict) else item
                    if not isinstance(out, str) or "${" in out or "${" in wdir:
                        continue
                    path = os.path.normpath(os.path.join(base, wdir, out)).replace(os.sep, "/")
                    pipe.outs.setdefault(path, (index, kind))
                    if frozen:
                        pipe.frozen.add(path)
    return pipe


def _yaml_reason(exc: BaseException) -> str:
    """One line: YAML's problem and where, not its multi-line context."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem:
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"{problem}{at}"
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# -- the command ---------------------------------------------------------------------------------


def force_command(command: str) -> tuple[str, str] | None:
    """`dvc repro …` → (`dvc repro --force …`, "dvc repro --force"); likewise `dvc exp run`.
    None when the command is not one of those (a shell string, a script, `dvc pull`)."""
    try:
        tokens = shlex.split(command)
    except ValueError:
        return None
    forced = force_argv(tokens)
    if forced is None:
        return None
    argv, said = forced
    return shlex.join(argv), said


def force_argv(tokens: Sequence[str]) -> tuple[list[str], str] | None:
    words = list(tokens)
    start = next((i + 1 for i, w in enumerate(words) if w.rsplit("/", 1)[-1] == "dvc"), None)
    if start is None:
        return None
    j = start
    while j < len(words) and words[j].startswith("-"):  # dvc's global options: -q, --cd DIR
        j += 2 if words[j] in _GLOBAL_WITH_VALUE else 1
    if words[j : j + 1] == ["repro"]:
        at, said = j + 1, "dvc repro --force"
    elif len(words) >= j + 2 and words[j] in ("exp", "experiments") and words[j + 1] == "run":
        at, said = j + 2, "dvc exp run --force"
    else:
        return None
    rest = words[at:]
    if "-f" in rest or "--force" in rest:
        return words, said
    return [*words[:at], "--force", *rest], said


def runs_pipeline(command: str, cwd: Path) -> bool:
    """Whether the command runs a DVC pipeline, itself or through a script in `cwd`."""
    from ctui.config import runs_dvc

    return runs_dvc(command, cwd)


def remove_outputs(
    worktree: Path, here: Path, pipeline: Pipeline, data: Mapping[str, Any]
) -> list[str]:
    """Remove every stage output from the worktree (those the worktree's dvc.yaml declares
    and those the run recorded), except the outputs of frozen stages; → the paths removed."""
    from ctui.manifest.data import role_of

    recorded = (data.get("paths") or {}) if data.get("status") == "ok" else {}
    wanted = set(pipeline.outs)
    for path, entry in recorded.items():
        if role_of(entry) != "output":
            continue
        if not {_stage_key(s) for s in entry.get("sources") or []} & pipeline.frozen_stages:
            wanted.add(path)
    removed = []
    top = worktree.resolve()
    chosen = []
    for rel in sorted(wanted - pipeline.frozen):
        target = Path(os.path.normpath(here / rel))
        if target.is_relative_to(worktree) and target.parent.resolve().is_relative_to(top):
            chosen.append(rel)  # never outside the worktree, whatever a manifest says
    _hide_from_git(here, chosen)
    for rel in chosen:
        target = Path(os.path.normpath(here / rel))
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        else:
            continue
        removed.append(rel)
    return removed


def _hide_from_git(here: Path, paths: list[str]) -> None:
    """Outputs git tracks (a `cache: false` metrics file is committed with the code) are
    marked skip-worktree in the worktree's own index before they go: their removal is the
    rebuild's doing, not a change to the code the new run records. The index is the
    worktree's; the user's checkout is not touched."""
    import subprocess

    if not paths:
        return
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--", *paths], cwd=here, capture_output=True, timeout=60
    )
    if listed.returncode != 0 or not listed.stdout:
        return
    proc = subprocess.run(
        ["git", "update-index", "--skip-worktree", "-z", "--stdin"], cwd=here,
        input=listed.stdout, capture_output=True, timeout=60,
    )  # fmt: skip
    if proc.returncode != 0:
        said = proc.stderr.decode(errors="replace").strip().splitlines()
        raise CtuiError(
            "could not set aside the committed pipeline outputs in the worktree: "
            + (said[-1] if said else f"git update-index exited {proc.returncode}")
        )


def _stage_key(source: Any) -> str:
    """`sub/dvc.lock:train@a:out` → `sub:train` (a recorded source, as `frozen_stages` has it)."""
    parts = str(source).split(":")
    if len(parts) < 3:
        return ""
    folder = parts[0].rsplit("/", 1)[0] if "/" in parts[0] else ""
    return f"{folder}:{parts[-2].split('@', 1)[0]}"


# -- the whole step ------------------------------------------------------------------------------


@dataclass
class Rebuild:
    """How the reproduction was made to run every stage."""

    #: recorded on the new run: "dvc repro --force", or "own DVC cache, outputs removed"
    how: str
    #: the progress line
    said: str


def force_rebuild(
    config: Config,
    job_name: str,
    root: Path,
    worktree: Path,
    here: Path,
    pipeline: Pipeline,
    data: Mapping[str, Any],
) -> Rebuild | None:
    """Make the job's DVC pipeline run every stage in the worktree (see the module docstring):
    `--force` on a `dvc repro` / `dvc exp run` command (the job in `config` is replaced),
    else an own DVC cache and the outputs removed. None for a job that runs no pipeline."""
    from ctui.reproduce.data import isolate_dvc_cache

    job = config.jobs[job_name]
    if not pipeline.stages or not runs_pipeline(job.command, here / job.workdir):
        return None
    forced = None if job.shell else force_command(job.command)
    if forced is not None:
        command, how = forced
        config.jobs[job_name] = dataclasses.replace(job, command=command, env=dict(job.env))
        return Rebuild(how, f"rebuild: {how} (every stage runs; none is skipped as unchanged "
                       "or restored from DVC's cache)")  # fmt: skip
    linked = isolate_dvc_cache(root, here, data)
    if linked is None:
        return None
    removed = remove_outputs(worktree, here, pipeline, data)
    how = "own DVC cache, outputs removed"
    said = (
        f"rebuild: the worktree has its own DVC cache ({linked} raw input object(s) linked in, "
        f"no outputs, no run-cache) and {len(removed)} stage output(s) were removed, so every "
        f"stage must run (`{job.command}` runs dvc where --force cannot be added)"
    )
    return Rebuild(how, said)
