"""The footer of every ctui screen: the keys that fit the width, by priority, then `? help`.

How a screen orders its keys
----------------------------
A screen lists binding ids in priority order in a class attribute::

    class RunsScreen(Screen[None]):
        FOOTER_KEYS: ClassVar[tuple[str, ...]] = ("runs.filter", "runs.diff", "runs.mark", ...)

The footer shows, left to right: the bindings named in `FOOTER_KEYS` in that order (even those
with `show=False`, so a key kept out of Textual's own footer can still be offered here), then
the other bindings with `show=True` in the order the screen binds them. Keys are added while
they fit; a key that does not fit is left out whole (never cut mid-word), and the footer always
ends in `? help`, where every key of the screen is listed. A screen without `FOOTER_KEYS` gets
its shown bindings in binding order.

The bindings are the screen's *active* ones (`Screen.active_bindings`), so a user keymap
(`app.set_keymap`) shows its own keys here, and an action the screen disables is left out.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widget import Widget

HELP_KEY = "?"
HELP_LABEL = "help"
GAP = " "
#: actions never offered in the footer: `?` closes it, the palette has its own key
HIDDEN_ACTIONS = frozenset({"command_palette", "help", "app.help"})


def footer_bindings(screen: Any) -> list[tuple[str, Binding]]:
    """(key display, binding) of a screen's active bindings in footer priority order."""
    app = screen.app
    order: tuple[str, ...] = tuple(getattr(screen, "FOOTER_KEYS", ()) or ())
    rank = {binding_id: i for i, binding_id in enumerate(order)}
    chosen: dict[str, tuple[int, int, str, Binding]] = {}
    for n, active in enumerate(screen.active_bindings.values()):
        binding = active.binding
        if not active.enabled or not binding.description:
            continue
        if binding.action in HIDDEN_ACTIONS:
            continue
        listed = binding.id is not None and binding.id in rank
        if not listed and not binding.show:
            continue
        # one entry per action: the first key bound to it is the one shown
        if binding.action in chosen:
            continue
        first = rank[binding.id] if listed and binding.id is not None else len(rank)
        chosen[binding.action] = (first, n, app.get_key_display(binding), binding)
    ordered = sorted(chosen.values(), key=lambda item: (item[0], item[1]))
    return [(display, binding) for _, _, display, binding in ordered]


def footer_text(items: list[tuple[str, str]], width: int) -> Text:
    """` key Label  key Label … ? help` cut to `width` by dropping whole items."""
    tail = Text(" ")
    tail.append(HELP_KEY, style="bold reverse")
    tail.append(f" {HELP_LABEL}")
    text = Text()
    for key, label in items:
        piece = Text(" ")
        piece.append(key, style="bold reverse")
        piece.append(f" {label}")
        if text.cell_len + piece.cell_len + len(GAP) + tail.cell_len > width:
            break  # priority order: what comes later matters less, so stop at the first miss
        text.append_text(piece)
        text.append(GAP)
    text.append_text(tail)
    return text


class KeyFooter(Widget):
    """One line of the screen's keys that fit, ending in `? help` (see the module docstring)."""

    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        background: $panel;
        color: $foreground;
    }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Any) -> None:
        if self.is_attached and screen is self.screen:
            self.refresh()

    def items(self) -> list[tuple[str, str]]:
        return [(key, b.description) for key, b in footer_bindings(self.screen)]

    def render(self) -> Text:
        return footer_text(self.items(), self.size.width)
