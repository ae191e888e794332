"""The Textual front end. Presentation only: every action calls the same core functions the
CLI uses. Imported lazily by `ctui` / `ctui tui` / `ctui demo`, never by the other commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctui.tui.app import CtuiApp


def __getattr__(name: str) -> Any:  # `from ctui.tui import CtuiApp` without importing textual early
    if name == "CtuiApp":
        from ctui.tui.app import CtuiApp

        return CtuiApp
    raise AttributeError(name)


__all__ = ["CtuiApp"]
