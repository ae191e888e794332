"""The gate and the champion as the TUI shows them: the table's ★, the detail's verdict, the
diff's "challenger vs champion" line.

Nothing here imports textual. Champion lookups read the store once per call (the whole
`champions` table, never one read per run), so the runs table stays cheap at 10,000 runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.text import Text

from ctui.format import number
from ctui.store import Store
from ctui.tui.data import Run, fmt_ago, fmt_time

if TYPE_CHECKING:
    from ctui.project import Project

CHAMPION_MARK = ("★", "bold yellow")
REJECTED_MARK = ("✗", "dim")
NO_MARK = (" ", "")

#: `metric.acc`, `champion.val.loss` in a rule: the metric names a gate looks at
_NAME = r"[A-Za-z_][\w\-/]*"
_RULE_METRIC = re.compile(rf"(?<![\w.])(?:metric|champion)\.({_NAME}(?:\.{_NAME})*)")


def row_mark(run: Run, champion_ids: frozenset[str] | set[str]) -> tuple[str, str]:
    """(symbol, style) in front of a row: ★ the job's champion, a dim ✗ a run the gate
    did not pass, else blank."""
    if run.get("id") in champion_ids:
        return CHAMPION_MARK
    gate = run.get("gate")
    if isinstance(gate, dict) and gate.get("passed") is False:
        return REJECTED_MARK
    return NO_MARK


def champion_status(store: Store, run: Run) -> dict[str, Any] | None:
    """Where `run` stands with its job's champion, in one store read:
    `{"champion": id, "is_champion": bool, "since": float | None, "by": str | None}`,
    or None when the job has no champion."""
    from ctui.gate.champion import CHAMPIONS, PROMOTIONS

    data = store.read_all()
    doc = (data.get(CHAMPIONS) or {}).get(run.get("job") or "")
    if not isinstance(doc, dict) or not doc.get("run"):
        return None
    promotion = (data.get(PROMOTIONS) or {}).get(doc.get("promotion") or "") or {}
    return {
        "champion": str(doc["run"]),
        "is_champion": doc["run"] == run.get("id"),
        "since": doc.get("since"),
        "by": promotion.get("by") if isinstance(promotion, dict) else None,
    }


def champion_text(status: dict[str, Any] | None, job: str, now: float) -> Text:
    """One line for the detail: "★ champion of train since … (by gate)", or who is."""
    if status is None:
        return Text(f"no champion of {job} yet", style="dim")
    since = status.get("since")
    when = f" since {fmt_time(since)} ({fmt_ago(since, now)})" if since else ""
    by = f", by {status['by']}" if status.get("by") else ""
    text = Text()
    if status["is_champion"]:
        text.append("★ ", style=CHAMPION_MARK[1])
        text.append(f"champion of {job}{when}{by}", style="bold")
        return text
    text.append(f"champion of {job}: {status['champion']}{when}{by}")
    return text


def gate_text(gate: Any) -> Text:
    """The verdict line, then one line per rule with ✓/✗ and its detail. Plain text."""
    if not isinstance(gate, dict):
        return Text("not evaluated (the job has no gate, or the run has not succeeded)", "dim")
    passed = bool(gate.get("passed"))
    text = Text()
    text.append("✓ " if passed else "✗ ", style="bold green" if passed else "bold red")
    text.append(str(gate.get("verdict") or ("passed" if passed else "failed")), style="bold")
    against = gate.get("champion")
    if against:
        text.append(f"\n  against champion {against}", style="dim")
    if gate.get("at"):
        text.append(f"\n  evaluated {fmt_time(gate['at'])}", style="dim")
    for rule in gate.get("rules") or ():
        if not isinstance(rule, dict):
            continue
        ok = bool(rule.get("passed"))
        text.append("\n  ")
        text.append("✓ " if ok else "✗ ", style="green" if ok else "red")
        text.append(str(rule.get("rule") or ""))
        detail = rule.get("detail")
        if detail:
            text.append(f"\n      {detail}", style="dim")
    return text


def rule_metrics(rules: Iterable[str]) -> list[str]:
    """The metric names the rules use (`metric.acc`, `champion.acc` → `acc`), in order."""
    names: list[str] = []
    for rule in rules:
        for name in _RULE_METRIC.findall(rule):
            if name not in names:
                names.append(name)
    return names


def gate_rules(project: Project, job: str) -> list[str]:
    """The job's gate rules from ctui.toml; none when it has no gate or the file is bad."""
    from ctui.config import load_config
    from ctui.errors import CtuiError

    try:
        config = load_config(project.root)
    except (CtuiError, OSError):
        return []
    gate = getattr(config.jobs.get(job), "gate", None)
    return list(getattr(gate, "rules", None) or [])


def delta(a: Any, b: Any) -> str | None:
    """`+0.012` for b − a, or None when either is not a number."""
    numeric = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    if not isinstance(a, numeric) or not isinstance(b, numeric):
        return None
    d = b - a
    if isinstance(d, float):
        d = round(d, 12)
    return ("+" if d >= 0 else "-") + number(abs(d))


def challenger_line(
    champion: Run, challenger: Run, rules: list[str], gate: dict[str, Any] | None
) -> str:
    """ "challenger vs champion: acc +0.012, loss -0.03, gate passed" (gate: the challenger's)."""
    names = rule_metrics(rules) or sorted(challenger.get("metrics") or {})
    ours = champion.get("metrics") or {}
    theirs = challenger.get("metrics") or {}
    parts = []
    for name in names:
        d = delta(ours.get(name), theirs.get(name))
        parts.append(f"{name} {d}" if d is not None else f"{name} —")
    if not isinstance(gate, dict):
        parts.append("no gate verdict")
    else:
        verdict = "gate passed" if gate.get("passed") else "gate failed"
        against = gate.get("champion")
        if against and against != champion.get("id"):  # judged against an earlier champion
            verdict += f" against {against}"
        parts.append(verdict)
    return "challenger vs champion: " + ", ".join(parts)


def challenger_gate(project: Project, store: Store, challenger: Run) -> dict[str, Any] | None:
    """The challenger's recorded verdict, else (a succeeded run never gated) `check`'s."""
    gate = challenger.get("gate")
    if isinstance(gate, dict):
        return gate
    if challenger.get("status") != "succeeded":
        return None
    from ctui.errors import CtuiError
    from ctui.gate.champion import check

    try:
        result = check(project, store, challenger["id"])
    except (CtuiError, OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None
