"""How each run status looks: a symbol and a colour, so it reads without colour too.

Shared by the CLI tables and the TUI (plain data: no rich or textual import here).
"""

from __future__ import annotations

STATUS_LOOK: dict[str, tuple[str, str]] = {
    "queued": ("…", "yellow"),
    "running": ("▶", "bold cyan"),
    "succeeded": ("✓", "green"),
    "failed": ("✗", "bold red"),
    "cancelled": ("■", "magenta"),
    "lost": ("?", "red"),
    "timeout": ("⌛", "red"),
}
