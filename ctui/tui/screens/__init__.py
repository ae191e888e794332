"""One screen per module."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel


class PlainNotify:
    """Notifications show error texts, paths and ids as they are: never parsed as markup
    (an error naming `[tui.keymap]` or a log line must not be eaten or crash the toast)."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        super().notify(  # type: ignore[misc]
            message, title=title, severity=severity, timeout=timeout, markup=markup
        )
