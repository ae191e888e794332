"""Reproduce's progress: a line per step as it ends, the set-up steps with their time.

The core never prints: each line goes to the caller's `progress(message)` (the CLI prints it
on stderr, the TUI notifies). A line that ends a set-up step is a `Said`, a `str` that also
carries the step's name and seconds: a caller that only wants text sees the line alone, the
CLI shows the time beside it. The steps are kept for the result too (`setup`, `setup_s`), so
`--json` and the bench read the same figures the terminal shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

Progress = Callable[[str], None]


class Said(str):
    """A progress line; `step` and `seconds` are set when it ends a timed set-up step."""

    step: str | None = None
    seconds: float | None = None

    @classmethod
    def done(cls, step: str, text: str, seconds: float) -> Said:
        said = cls(text)
        said.step, said.seconds = step, seconds
        return said


def seconds_text(seconds: float) -> str:
    """`0.21 s`, `12.4 s`; a long step (a large `dvc pull`) as `3m05s`."""
    from ctui.format import duration

    if seconds < 10:
        return f"{seconds:.2f} s"
    return f"{seconds:.1f} s" if seconds < 60 else duration(seconds)


class SetupClock:
    """Times the set-up steps from its creation (the start of the reproduce) and reports
    each through `say` as it ends; `notes` between steps are reported and kept in order."""

    def __init__(self, say: Progress) -> None:
        self._say = say
        self.began = time.perf_counter()
        self.began_wall = time.time()
        self.steps: list[dict[str, Any]] = []
        self.total: float | None = None

    @staticmethod
    def now() -> float:
        return time.perf_counter()

    def done(self, step: str, text: str, since: float) -> None:
        """Step `step` began at `since` (from `now()`) and has ended; `text` says what it did."""
        seconds = time.perf_counter() - since
        self.steps.append({"step": step, "seconds": round(seconds, 3), "detail": text})
        self._say(Said.done(step, text, seconds))

    def note(self, text: str) -> None:
        """A remark on the set-up (no time of its own)."""
        self.steps.append({"step": "note", "seconds": None, "detail": text})
        self._say(text)

    def finish(self) -> float:
        """The set-up is over (the job was handed to its supervisor): its seconds in all."""
        self.total = time.perf_counter() - self.began
        return self.total

    def result(self, started: float | None) -> dict[str, Any]:
        """`setup` (the steps), `setup_s` (call → launched) and `start_s` (call → the job's
        own start as its supervisor recorded it; None when it never started)."""
        return {
            "setup": self.steps,
            "setup_s": round(self.total, 3) if self.total is not None else None,
            "start_s": round(started - self.began_wall, 3) if started else None,
        }
