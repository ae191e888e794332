"""The ctui Textual application: screens, app-wide bindings, the user keymap, the palette."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from ctui.tui.commands import ScreenActions
from ctui.tui.data import Clock

if TYPE_CHECKING:
    from textual.screen import Screen

    from ctui.project import Project

KEYMAP_FILE = Path("~/.config/ctui/keymap.toml")


def load_keymap(project: Project) -> tuple[dict[str, str], list[str]]:
    """Binding id → keys, from `~/.config/ctui/keymap.toml` then `[tui.keymap]` in ctui.toml.

    The project's table wins over the user's file. Problems come back as messages (shown as
    notifications), never as a crash: a broken keymap must not lock anyone out of the UI.
    """
    keymap: dict[str, str] = {}
    problems: list[str] = []
    user_file = Path(os.environ.get("CTUI_KEYMAP", KEYMAP_FILE)).expanduser()
    if user_file.is_file():
        try:
            data = tomllib.loads(user_file.read_text())
            table = data.get("keymap", data)
            keymap.update(_strings(table, str(user_file), problems))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            problems.append(f"{user_file}: {exc}")
    try:
        from ctui.config import load_config

        raw = load_config(project.root).raw
        table = (raw.get("tui") or {}).get("keymap") or {}
        keymap.update(_strings(table, "[tui.keymap]", problems))
    except Exception as exc:  # noqa: BLE001 - the config's own errors show elsewhere
        problems.append(f"keymap not loaded from the project config: {exc}")
    return keymap, problems


def _strings(table: Any, where: str, problems: list[str]) -> dict[str, str]:
    if not isinstance(table, dict):
        problems.append(f'{where}: expected a table of binding-id = "keys"')
        return {}
    good = {k: v for k, v in table.items() if isinstance(v, str)}
    for k in table.keys() - good.keys():
        problems.append(f'{where}: {k} must be a string of keys like "ctrl+d,d"')
    return good


class CtuiApp(App[None]):
    """`CtuiApp(project)`; `clock` freezes "3m ago" times (tests, screenshots)."""

    CSS_PATH = "app.tcss"
    TITLE = "ctui"
    COMMANDS = App.COMMANDS | {ScreenActions}
    ENABLE_COMMAND_PALETTE = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
    ]

    def __init__(
        self,
        project: Project,
        *,
        clock: Clock | None = None,
        poll_interval: float | None = None,
        keymap: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.project = project
        self.clock = clock
        self.poll_interval = poll_interval
        self.sub_title = project.root.name
        self._keymap_override = keymap

    def get_default_screen(self) -> Screen[Any]:
        from ctui.tui.screens.runs import RunsScreen

        return RunsScreen(self.project, clock=self.clock, poll_interval=self.poll_interval)

    def on_mount(self) -> None:
        if self._keymap_override is not None:
            keymap, problems = self._keymap_override, list[str]()
        else:
            keymap, problems = load_keymap(self.project)
        if keymap:
            self.set_keymap(keymap)
        for problem in problems:
            self.notify(problem, title="keymap", severity="warning", timeout=8, markup=False)

    def action_help(self) -> None:
        from ctui.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        keys = []
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if binding.description and binding.action != "command_palette":
                keys.append((self.get_key_display(binding), binding.description))
        self.push_screen(HelpScreen(keys))
