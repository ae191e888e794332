"""Exit codes and the one exception type the CLI turns into a clean message."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes of every `ctui` command (see README)."""

    OK = 0
    #: the job, check or comparison failed (a failed run, `diverged`, doctor found damage)
    FAILED = 1
    #: bad input: unknown or ambiguous run id, broken config, corrupt store, unreachable engine
    BAD_INPUT = 2
    #: a lock another process holds could not be taken in time
    BUSY = 3
    #: interrupted by the user (Ctrl-C)
    INTERRUPTED = 130


class CtuiError(Exception):
    """An expected failure with a message for humans and an exit code.

    `hint` says what to do about it; the CLI prints both and never a traceback.
    """

    def __init__(self, message: str, *, hint: str = "", code: ExitCode = ExitCode.BAD_INPUT):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class StoreCorruptError(CtuiError):
    """The TinyDB file (or a document in it) could not be read. Never overwritten."""


class UnknownRunError(CtuiError):
    pass


class AmbiguousRunError(CtuiError):
    def __init__(self, prefix: str, candidates: list[str]):
        shown = ", ".join(candidates[:10]) + (" …" if len(candidates) > 10 else "")
        super().__init__(
            f"run id prefix {prefix!r} is ambiguous: {len(candidates)} runs match ({shown})",
            hint="type more characters of the id, or use its number (#N in `ctui runs`)",
        )
        self.candidates = candidates


class ConfigError(CtuiError):
    """A broken ctui.toml / pyproject.toml: names the file, the key and what is wrong."""

    def __init__(self, path: object, key: str, problem: str):
        where = f"{path}: [{key}]" if key else f"{path}"
        super().__init__(f"{where}: {problem}", hint="fix the config file and try again")
        self.path = path
        self.key = key


class UnavailableError(CtuiError):
    """An external engine (Docker, MLflow server, Slurm) is not reachable."""


class BusyError(CtuiError):
    def __init__(self, message: str, hint: str = ""):
        super().__init__(message, hint=hint, code=ExitCode.BUSY)


class BadRunError(StoreCorruptError):
    """A run document that parses but has wrongly typed fields; the other runs still read."""


_OS_HINTS = {
    "ENOSPC": "the disk is full: free some space, then try again",
    "EDQUOT": "the disk quota is used up: free some space, then try again",
    "EROFS": "the file system is mounted read-only",
    "EACCES": "you may not write there: check its owner and permissions",
    "EPERM": "you may not write there: check its owner and permissions",
}


def os_error(exc: OSError, doing: str = "") -> CtuiError:
    """An OSError as one line for humans (exit 2): what ctui was doing, why, and where.

    `doing` reads after "could not", e.g. "write the run store .ctui/ctui.json".
    """
    import errno as _errno

    name = _errno.errorcode.get(exc.errno or 0, "")
    why = exc.strerror or str(exc) or type(exc).__name__
    where = "" if exc.filename is None else str(exc.filename)
    if doing:
        message = f"could not {doing}: {why}" + (f" ({where})" if where not in doing else "")
        hint = "; ".join(x for x in ("nothing was changed", _OS_HINTS.get(name, "")) if x)
    else:
        message = f"{why}: {where}" if where else why
        hint = _OS_HINTS.get(name, "")
    return CtuiError(message, hint=hint)
