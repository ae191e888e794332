"""The help screen (`?`): the keys of the screen you came from, then its section of help.md.

The key list is generated from that screen's active bindings (so a user keymap shows its own
keys), the prose from the section of ctui/tui/help.md named by the screen's `HELP_SECTION`
(or the table below), then the keys that work everywhere.
"""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Markdown

from ctui.tui.widgets.key_footer import KeyFooter

#: screen class → heading of its section in help.md (a screen's HELP_SECTION wins)
SECTIONS = {
    "RunsScreen": "Runs (home)",
    "RunDetailScreen": "Run details",
    "DiffScreen": "Diff",
    "TriggersScreen": "Triggers",
    "LaunchScreen": "Launch",
    "LiveRunScreen": "Live run",
    "JumpScreen": "Jump",
    "ComparePlotScreen": "Metric charts",
}
#: sections shown on every help page, after the screen's own
COMMON = ("Everywhere", "Your own keys")


def help_markdown() -> str:
    return (files("ctui.tui") / "help.md").read_text(encoding="utf-8")


def help_sections(text: str | None = None) -> dict[str, str]:
    """`## Heading` → its body, from help.md."""
    text = help_markdown() if text is None else text
    sections: dict[str, str] = {}
    for part in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        heading, _, body = part.partition("\n")
        sections[heading.strip()] = body.strip()
    return sections


def section_name(screen: Any) -> str | None:
    return getattr(screen, "HELP_SECTION", None) or SECTIONS.get(type(screen).__name__)


def screen_keys(screen: Any) -> list[tuple[str, str]]:
    """(keys, description) of every described binding active on `screen`, one per action."""
    app = screen.app
    by_action: dict[str, tuple[list[str], str]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if not binding.description or binding.action in ("command_palette",):
            continue
        keys, _ = by_action.setdefault(binding.action, ([], binding.description))
        display = app.get_key_display(binding)
        if display not in keys:
            keys.append(display)
    return [(" ".join(keys), desc) for keys, desc in by_action.values()]


def _escape_cell(text: str) -> str:
    return text.replace("`", "'")


class HelpScreen(Screen[None]):
    """`HelpScreen(keys, of_screen=screen)`: the keys and the help of `screen`."""

    HELP_SECTION = "Help"
    FOOTER_KEYS: ClassVar[tuple[str, ...]] = ("help.close",)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "back", "Back", id="help.close"),
        Binding("down,j", "scroll(1)", "Down", show=False, id="help.down"),
        Binding("up,k", "scroll(-1)", "Up", show=False, id="help.up"),
        Binding("g,home", "scroll_to(0)", "Top", show=False, id="help.top"),
        Binding("G,end", "scroll_to(-1)", "Bottom", show=False, id="help.bottom"),
        Binding("ctrl+d,pagedown", "page(1)", "Half page down", show=False, id="help.page_down"),
        Binding("ctrl+u,pageup", "page(-1)", "Half page up", show=False, id="help.page_up"),
    ]

    def __init__(self, keys: list[tuple[str, str]] | None = None, of_screen: Any = None) -> None:
        super().__init__()
        self.keys = keys or []
        self.section = section_name(of_screen) if of_screen is not None else None
        self.title_text = self.section or "ctui"

    def markdown(self) -> str:
        sections = help_sections()
        parts = [f"# Keys: {self.title_text}"]
        if self.keys:
            # the keys really bound now, so a user keymap shows up here too
            parts.append("\n".join(f"- `{_escape_cell(k)}` — {d}" for k, d in self.keys))
        if self.section and self.section in sections:
            parts.append(sections[self.section])
        for name in COMMON:
            if name in sections and name != self.section:
                parts.append(f"## {name}\n\n{sections[name]}")
        if self.section == "Runs (home)" and "Filter language" in sections:
            parts.append(f"## Filter language\n\n{sections['Filter language']}")
        if self.section is None:
            parts = [help_markdown()]
        return "\n\n".join(parts) + "\n"

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-scroll"):
            yield Markdown(self.markdown(), id="help-text")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def _scroll(self) -> VerticalScroll:
        return self.query_one("#help-scroll", VerticalScroll)

    def action_scroll(self, lines: int) -> None:
        self._scroll().scroll_relative(y=lines, animate=False)

    def action_scroll_to(self, where: int) -> None:
        scroll = self._scroll()
        if where < 0:
            scroll.scroll_end(animate=False)
        else:
            scroll.scroll_home(animate=False)

    def action_page(self, direction: int) -> None:
        scroll = self._scroll()
        scroll.scroll_relative(y=direction * max(1, scroll.size.height // 2), animate=False)

    def action_back(self) -> None:
        self.dismiss()

    # the old name, kept for user keymaps that name the action
    action_close = action_back
